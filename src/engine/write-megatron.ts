import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeAtomically } from "./atomic-dir.js";
import { runJobs } from "./job-runner.js";
import { writeSharedCheckpoint, type ShareOutcome } from "./shared-staging.js";
import { dealByBytes, type WorkerShare } from "./worker-split.js";
import { noProgress, type ProgressListener } from "./progress.js";
import type { SourceSpace } from "./source-space.js";
import { throwIfNonFinite } from "./finite.js";
import type { NonFiniteCounts, RankFileJob, RankFileSettings } from "./rank-file.js";
import { rankFileRunners, type RankFileThreads } from "./rank-file-threads.js";
import type { ArgValue } from "../megatron/args.js";
import { rankFilePath, TRACKER_FILE, trackerContent } from "../megatron/checkpoint-layout.js";
import { rankFileBytes, type ConversionPlan, type RankFilePlan } from "../mapping/plan.js";

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
  /** Write rank files in worker threads too (`jobs` of them at once in all); default: this thread only. */
  readonly threads?: RankFileThreads | undefined;
}

/** Whether the checkpoint is now at `out`, and for a split run how many workers are done. */
export type WriteOutcome = ShareOutcome & {
  /** Threads that wrote rank files, this one included. */
  readonly threads: number;
};

/** Top-level names of a Megatron output folder that megatron-convert writes. */
export function isMegatronOutputName(name: string): boolean {
  return name === TRACKER_FILE || name === "release" || /^iter_[0-9]{7}$/.test(name) || name === "megatron-convert.json" || name === "megatron-flags.txt";
}

/** Writes every rank file of a plan into a staging folder, the tracker last, then moves it into place. */
export async function writeMegatronCheckpoint(options: WriteMegatronOptions): Promise<WriteOutcome> {
  const onProgress = options.onProgress ?? noProgress;
  const share = options.worker !== undefined && options.worker.count > 1 ? options.worker : undefined;
  const files = share === undefined ? options.plan.files : filesOf(options.plan, share);
  onProgress({ kind: "plan", files: files.length, totalBytes: files.reduce((s, f) => s + rankFileBytes(f), 0) });
  const threads = threadsFor(options.threads, files.length);
  const writeFiles = async (staging: string, atomic: boolean) => {
    const jobs = files.map((file): RankFileJob => {
      const relative = rankFilePath(file.rank, options.plan.layout, options.iteration);
      return { file, relative, path: join(staging, relative), atomic };
    });
    throwIfNonFinite(options.out, await writeRankFiles(jobs, options, threads, onProgress));
  };
  const finish = async (staging: string) => {
    for (const [name, content] of options.extraFiles ?? []) {
      await writeFile(join(staging, name), content);
    }
    await writeFile(join(staging, TRACKER_FILE), trackerContent(options.iteration));
  };
  if (share !== undefined) {
    const outcome = await writeSharedCheckpoint({
      out: options.out,
      share,
      fingerprint: fingerprintOf(options),
      writeShare: (staging) => writeFiles(staging, true),
      expected: options.plan.files.map((f) => rankFilePath(f.rank, options.plan.layout, options.iteration)),
      finish,
      force: options.force === true,
      ours: isMegatronOutputName,
    });
    return { ...outcome, threads: threads?.count ?? 1 };
  }
  await writeAtomically(options.out, async (staging) => {
    await writeFiles(staging, false);
    await finish(staging);
  }, { force: options.force === true, ours: isMegatronOutputName });
  return { published: true, workersDone: 1, threads: threads?.count ?? 1 };
}

/** The threads asked for, no more than files; undefined where that leaves this thread alone. */
function threadsFor(threads: RankFileThreads | undefined, files: number): RankFileThreads | undefined {
  const count = Math.min(threads?.count ?? 1, files);
  return threads === undefined || count <= 1 ? undefined : { ...threads, count };
}

/** Writes the rank files, in this thread or spread over threads; the NaN/Inf counts they found. */
async function writeRankFiles(
  jobs: readonly RankFileJob[],
  options: WriteMegatronOptions,
  threads: RankFileThreads | undefined,
  onProgress: ProgressListener,
): Promise<NonFiniteCounts> {
  const settings: RankFileSettings = { args: options.args, iteration: options.iteration, checkFinite: options.checkFinite === true };
  const found: (readonly [string, number])[] = [];
  const runners = rankFileRunners(threads, Math.min(options.jobs, jobs.length), settings, options.space, onProgress);
  try {
    await runJobs(jobs, runners, (counts) => found.push(...counts));
  } finally {
    await Promise.all(runners.map((r) => r.close()));
  }
  return found;
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
