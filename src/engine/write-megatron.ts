import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { writeAtomically } from "./atomic-dir.js";
import { runPool } from "./pool.js";
import { counted, noProgress, type ProgressListener } from "./progress.js";
import type { SourceSpace } from "./source-space.js";
import { FiniteScan } from "./finite.js";
import { BandPool, tensorBytes } from "./tensor-stream.js";
import { writeTorchCheckpoint } from "../formats/torch/checkpoint-writer.js";
import { TensorOut } from "../formats/torch/pickle/values.js";
import type { ArgValue } from "../megatron/args.js";
import { rankFilePath, TRACKER_FILE, trackerContent } from "../megatron/checkpoint-layout.js";
import { rankStateDict, type ModelChunk } from "../megatron/state-dict.js";
import type { ConversionPlan, PlannedEntry, RankFilePlan } from "../mapping/plan.js";
import { numelOf } from "../model/tensor.js";

export interface WriteMegatronOptions {
  readonly out: string;
  readonly plan: ConversionPlan;
  readonly space: SourceSpace;
  readonly args: ReadonlyMap<string, ArgValue>;
  readonly iteration: number | "release";
  readonly jobs: number;
  /** Extra files written beside the tracker (flags, manifest), relative path -> content. */
  readonly extraFiles?: ReadonlyMap<string, string>;
  readonly onProgress?: ProgressListener;
  /** Replace an existing output that holds only a checkpoint we could have written. */
  readonly force?: boolean;
  /** Scan every tensor for NaN/Inf while it is written; fail naming them. */
  readonly checkFinite?: boolean;
}

/** Top-level names of a Megatron output folder that megatron-convert writes. */
export function isMegatronOutputName(name: string): boolean {
  return name === TRACKER_FILE || name === "release" || /^iter_[0-9]{7}$/.test(name) || name === "megatron-convert.json" || name === "megatron-flags.txt";
}

/** Writes every rank file of a plan into a staging folder, the tracker last, then moves it into place. */
export async function writeMegatronCheckpoint(options: WriteMegatronOptions): Promise<void> {
  const onProgress = options.onProgress ?? noProgress;
  const { plan } = options;
  onProgress({ kind: "plan", files: plan.files.length, totalBytes: plan.totalBytes });
  const finite = options.checkFinite === true ? new FiniteScan() : undefined;
  await writeAtomically(options.out, async (staging) => {
    await runPool(plan.files, options.jobs, async (file) => {
      const relative = rankFilePath(file.rank, plan.layout, options.iteration);
      const path = join(staging, relative);
      await mkdir(dirname(path), { recursive: true });
      const iteration = options.iteration === "release" ? 0 : options.iteration;
      const root = rankStateDict(options.args, chunksOf(file, options.space, relative, onProgress, finite), iteration);
      await writeTorchCheckpoint(path, root);
      onProgress({ kind: "file-done", file: relative });
    });
    for (const [name, content] of options.extraFiles ?? []) {
      await writeFile(join(staging, name), content);
    }
    finite?.throwIfAny(options.out);
    await writeFile(join(staging, TRACKER_FILE), trackerContent(options.iteration));
  }, { force: options.force === true, ours: isMegatronOutputName });
}

function chunksOf(file: RankFilePlan, space: SourceSpace, relative: string, onProgress: ProgressListener, finite?: FiniteScan): ModelChunk[] {
  // One file's storages are written one after another, so they can share a ring of buffers.
  const pool = new BandPool();
  return file.models.map((model) => ({
    key: model.key,
    entries: model.entries.map((entry) => [entry.name, tensorOut(entry, space, pool, `${relative}:${model.key}/${entry.name}`, relative, onProgress, finite)] as const),
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
