import { createHash } from "node:crypto";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname, join, parse } from "node:path";
import { writeAtomically } from "./atomic-dir.js";
import { runPool } from "./pool.js";
import { partialName, writeSharedCheckpoint, type ShareOutcome } from "./shared-staging.js";
import { dealByBytes, type WorkerShare } from "./worker-split.js";
import { counted, noProgress, type ProgressListener } from "./progress.js";
import type { SourceSpace } from "./source-space.js";
import { FiniteScan } from "./finite.js";
import { BandPool, tensorBytes } from "./tensor-stream.js";
import { writeTorchCheckpoint } from "../formats/torch/checkpoint-writer.js";
import { TensorOut } from "../formats/torch/pickle/values.js";
import type { ArgValue } from "../megatron/args.js";
import { rankFilePath, TRACKER_FILE, trackerContent } from "../megatron/checkpoint-layout.js";
import { rankStateDict, type ModelChunk } from "../megatron/state-dict.js";
import { rankFileBytes, type ConversionPlan, type PlannedEntry, type RankFilePlan } from "../mapping/plan.js";
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
  /** Write only this share of the rank files; the worker that completes the set publishes it. */
  readonly worker?: WorkerShare | undefined;
}

/** Whether the checkpoint is now at `out`, and for a split run how many workers are done. */
export type WriteOutcome = ShareOutcome;

/** Top-level names of a Megatron output folder that megatron-convert writes. */
export function isMegatronOutputName(name: string): boolean {
  return name === TRACKER_FILE || name === "release" || /^iter_[0-9]{7}$/.test(name) || name === "megatron-convert.json" || name === "megatron-flags.txt";
}

/** Writes every rank file of a plan into a staging folder, the tracker last, then moves it into place. */
export async function writeMegatronCheckpoint(options: WriteMegatronOptions): Promise<WriteOutcome> {
  const onProgress = options.onProgress ?? noProgress;
  const finite = options.checkFinite === true ? new FiniteScan() : undefined;
  const share = options.worker !== undefined && options.worker.count > 1 ? options.worker : undefined;
  const files = share === undefined ? options.plan.files : filesOf(options.plan, share);
  onProgress({ kind: "plan", files: files.length, totalBytes: files.reduce((s, f) => s + rankFileBytes(f), 0) });
  const writeFiles = async (staging: string, atomicEach: boolean) => {
    await runPool(files, options.jobs, (file) => writeRankFile(options, staging, file, atomicEach, onProgress, finite));
    finite?.throwIfAny(options.out);
  };
  const finish = async (staging: string) => {
    for (const [name, content] of options.extraFiles ?? []) {
      await writeFile(join(staging, name), content);
    }
    await writeFile(join(staging, TRACKER_FILE), trackerContent(options.iteration));
  };
  if (share !== undefined) {
    return writeSharedCheckpoint({
      out: options.out,
      share,
      fingerprint: fingerprintOf(options),
      writeShare: (staging) => writeFiles(staging, true),
      expected: options.plan.files.map((f) => rankFilePath(f.rank, options.plan.layout, options.iteration)),
      finish,
      force: options.force === true,
      ours: isMegatronOutputName,
    });
  }
  await writeAtomically(options.out, async (staging) => {
    await writeFiles(staging, false);
    await finish(staging);
  }, { force: options.force === true, ours: isMegatronOutputName });
  return { published: true, workersDone: 1 };
}

async function writeRankFile(
  options: WriteMegatronOptions,
  staging: string,
  file: RankFilePlan,
  atomicEach: boolean,
  onProgress: ProgressListener,
  finite?: FiniteScan,
): Promise<void> {
  const relative = rankFilePath(file.rank, options.plan.layout, options.iteration);
  const path = join(staging, relative);
  await mkdir(dirname(path), { recursive: true });
  const iteration = options.iteration === "release" ? 0 : options.iteration;
  const root = rankStateDict(options.args, chunksOf(file, options.space, relative, onProgress, finite), iteration);
  // the archive folder inside the zip is named after the final file, as torch.save names it
  await writeTorchCheckpoint(atomicEach ? partialName(path) : path, root, { prefix: parse(path).name });
  if (atomicEach) {
    await rename(partialName(path), path);
  }
  onProgress({ kind: "file-done", file: relative });
}

/** This worker's rank files: the plan's files dealt by size, the same deal in every worker. */
function filesOf(plan: ConversionPlan, share: WorkerShare): RankFilePlan[] {
  const deal = dealByBytes(plan.files.map(rankFileBytes), share.count)[share.index] ?? [];
  return deal.map((i) => plan.files[i]).filter((f): f is RankFilePlan => f !== undefined);
}

/** Workers of one run agree on every file's contents: same layout, keys, shapes, dtypes and args. */
function fingerprintOf(options: WriteMegatronOptions): string {
  const { plan } = options;
  const files = plan.files.map((f) => ({
    rank: f.rank,
    models: f.models.map((m) => ({ key: m.key, entries: m.entries.map((e) => (e.kind === "tensor" ? [e.name, e.dtype, e.shape.join("x")] : [e.name])) })),
  }));
  const args = [...options.args];
  return createHash("sha256").update(JSON.stringify({ layout: plan.layout, iteration: options.iteration, files, args, extra: [...(options.extraFiles ?? [])] })).digest("hex");
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
