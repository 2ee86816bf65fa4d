import { mkdir, rename } from "node:fs/promises";
import { dirname, parse } from "node:path";
import { partialName } from "./shared-staging.js";
import { counted, type ProgressListener } from "./progress.js";
import type { SourceSpace } from "./source-space.js";
import { FiniteScan } from "./finite.js";
import { BandPool, tensorBytes } from "./tensor-stream.js";
import { writeTorchCheckpoint } from "../formats/torch/checkpoint-writer.js";
import { TensorOut } from "../formats/torch/pickle/values.js";
import type { ArgValue } from "../megatron/args.js";
import { rankStateDict, type ModelChunk } from "../megatron/state-dict.js";
import type { PlannedEntry, RankFilePlan } from "../mapping/plan.js";
import { numelOf } from "../model/tensor.js";

/** One rank file to write: plain data, so that it can be sent to a worker thread. */
export interface RankFileJob {
  readonly file: RankFilePlan;
  /** Its path in the checkpoint (`release/mp_rank_00_000/model_optim_rng.pt`), for progress and labels. */
  readonly relative: string;
  /** Where it is written (inside the staging folder). */
  readonly path: string;
  /** Written under a partial name, then renamed (a split run's shared folder). */
  readonly atomic: boolean;
}

/** What every rank file of one run shares. */
export interface RankFileSettings {
  readonly args: ReadonlyMap<string, ArgValue>;
  readonly iteration: number | "release";
  /** Scan every tensor for NaN/Inf while it is written. */
  readonly checkFinite: boolean;
}

/** NaN/Inf counts by tensor label, when the settings ask for the scan. */
export type NonFiniteCounts = readonly (readonly [string, number])[];

/** Writes one rank file (torch.save's format) from the source; reports its bytes and its end. */
export async function writeRankFile(job: RankFileJob, settings: RankFileSettings, space: SourceSpace, onProgress: ProgressListener): Promise<NonFiniteCounts> {
  const finite = settings.checkFinite ? new FiniteScan() : undefined;
  await mkdir(dirname(job.path), { recursive: true });
  const iteration = settings.iteration === "release" ? 0 : settings.iteration;
  const root = rankStateDict(settings.args, chunksOf(job, space, onProgress, finite), iteration);
  const target = job.atomic ? partialName(job.path) : job.path;
  // the archive folder inside the zip is named after the final file, as torch.save names it
  await writeTorchCheckpoint(target, root, { prefix: parse(job.path).name });
  if (job.atomic) {
    await rename(target, job.path);
  }
  onProgress({ kind: "file-done", file: job.relative });
  return [...(finite?.found ?? [])];
}

function chunksOf(job: RankFileJob, space: SourceSpace, onProgress: ProgressListener, finite?: FiniteScan): ModelChunk[] {
  // One file's storages are written one after another, so they can share a ring of buffers.
  const pool = new BandPool();
  return job.file.models.map((model) => ({
    key: model.key,
    entries: model.entries.map((entry) => [entry.name, tensorOut(entry, space, pool, `${job.relative}:${model.key}/${entry.name}`, job.relative, onProgress, finite)] as const),
  }));
}

function tensorOut(
  entry: PlannedEntry,
  space: SourceSpace,
  pool: BandPool,
  label: string,
  relative: string,
  onProgress: ProgressListener,
  finite?: FiniteScan,
): TensorOut | null {
  if (entry.kind === "extra-state") {
    return null;
  }
  const bytes = () => counted(tensorBytes(entry, space, { pool }), relative, onProgress);
  const storage = {
    dtype: entry.dtype,
    numel: numelOf(entry.shape),
    data: () => (finite === undefined ? bytes() : finite.scan(bytes(), entry.dtype, label)),
  };
  return new TensorOut(storage, entry.shape);
}
