import { readFile, stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { buildPlan, type TargetOptions } from "./build-plan.js";
import { openHfModel, type HfModel } from "./hf-input.js";
import { MANIFEST_FILE } from "./manifest.js";
import { FileSource } from "../formats/io/file-source.js";
import { readTorchCheckpoint } from "../formats/torch/checkpoint-reader.js";
import { RANK_FILE } from "../megatron/checkpoint-layout.js";
import { openCheckpointFolder, rankFileIn, type CheckpointFolder } from "../megatron/checkpoint-folder.js";
import { detectTarget } from "../megatron/detect.js";
import { inProcessChecker, type ByteChecker } from "../verify/byte-checker.js";
import { checkCheckpoint } from "../verify/exact.js";
import { threadChecker } from "../verify/exact-threads.js";
import { threadCount } from "../engine/thread-count.js";
import { workerScriptExists } from "../engine/worker-pool.js";
import type { VerifyWorkerData } from "./verify-worker.js";
import { MAX_REPORTED_DIFFERENCES, type ExactReport } from "../verify/report.js";

export interface VerifyExactOptions {
  readonly hf: string;
  readonly mcore: string;
  readonly iteration?: number | "release";
  /** Overrides what the manifest or the rank files' args say. */
  readonly target?: Partial<TargetOptions>;
  readonly jobs: number;
  /**
   * Check in worker threads too: true runs `jobs` threads in all (this one and jobs - 1 workers;
   * at most one per HF tensor) when the compiled worker is there; false checks everything in this
   * thread; default: up to one thread per CPU, when they pay for their start (see engine/thread-count.ts).
   */
  readonly threads?: boolean;
  /** Stored bytes past which an HF tensor is checked in windows of its rows (default MAX_CHECK_BYTES, verify/byte-checks.ts). */
  readonly checkBytes?: number;
}

/**
 * Starting a worker costs about 0.2 s of CPU (it loads the code and opens the source; the tiny
 * fixture verifies in 0.33-0.37 s with two threads, 0.14 s in one, on 2 vCPUs), spent while this
 * thread plans and reads the rank files' headers, so workers must save more than that. With spare
 * cores they do on any real model (16 CPUs, the bench's 4.2 GiB model, when rank files were checked
 * one per thread: 3.98 s in one thread, 2.32 s in 2, 1.14 s in 8). On a 2-CPU machine a worker
 * shares the cores with this thread and V8's helpers, and the two check only 1.3x as fast as one
 * (2 vCPUs, warm cache, checks by HF tensor, alternating runs): 0.78 s against 1.00 s of checking
 * on a 4.3 GiB model (6.6 GB of rank files; the whole verify 1.03-1.05 s against 1.16-1.19 s), the
 * whole verify 1.48-1.51 s against 1.61-1.71 s on the bench's 4.2 GiB model (5.4 GB), while on its
 * 1.1 GiB one (1.7 GB) the worker's start costs more than it saves (0.84-0.88 s against 0.75-0.81
 * s, 7 runs). In between (Mixtral-shaped models of hidden 1024, 6 alternating runs each, two
 * threads against one): 0.90-0.95 against 0.76-0.82 s at 2.1 GB, even at 2.9 GB (0.98-1.06
 * against 0.91-1.08 s; at a slower hour 1.26-1.63 against 1.24-1.63), 1.31-1.44 against 1.30-1.62
 * s at 3.7 GB. Since a worker opens its source at once and is sent checks further ahead
 * (`5adee94`), it starts to pay earlier (10 alternating runs, 2 vCPUs, warm): 0.88-0.94 against
 * 0.91-1.08 s at 1.7 GB (the bench's 1.1 GiB model), even at 1.2 GB (hidden 512; 0.91-1.06 against
 * 0.91-1.07 s), slower at 0.8 GB (0.74-0.98 against 0.70-0.84 s). So there a worker waits for this
 * many bytes.
 */
const MIN_BYTES_FOR_THREADS_ON_TWO_CPUS = 1.5e9;
/** The worker threads' script, beside this file once compiled. */
const WORKER_SCRIPT = fileURLToPath(new URL("./verify-worker.js", import.meta.url));

/**
 * verify (exact): checks a Megatron checkpoint against its HF source: the rank-folder set, every file's key set,
 * every tensor's dtype and shape, and every byte of every tensor (replicas and vocab padding
 * included) against the bytes the mapping derives from the HF tensors.
 */
export async function verifyExact(options: VerifyExactOptions): Promise<ExactReport> {
  const started = performance.now();
  const model = await openHfModel(options.hf);
  try {
    const folder = await openCheckpointFolder(options.mcore, options.iteration);
    const target = await resolveTarget(options, folder.iterationDir, folder.rankDirs[0] ?? "", folder.iteration);
    const threads = workerScriptExists(WORKER_SCRIPT)
      ? threadCount({
          jobs: options.jobs,
          units: model.tensors.length,
          forced: options.threads,
          cpus: availableParallelism(),
          bytes: await rankFileBytes(folder),
          minBytesOnTwoCpus: MIN_BYTES_FOR_THREADS_ON_TWO_CPUS,
        })
      : 1;
    // this thread checks too, beside threads - 1 workers, which start while it plans and reads the headers
    const checkers: ByteChecker[] = [inProcessChecker(model.space)];
    if (threads > 1) {
      checkers.push(threadChecker(WORKER_SCRIPT, { hfDir: model.dir } satisfies VerifyWorkerData, threads - 1));
    }
    let checked: Awaited<ReturnType<typeof checkCheckpoint>>;
    let built: Awaited<ReturnType<typeof buildPlan>>;
    try {
      built = await buildPlan(model, target);
      checked = await checkCheckpoint(built.plan, folder, checkers, { sourceOrder: shardOrder(model), maxCheckBytes: options.checkBytes });
    } finally {
      await Promise.all(checkers.map((c) => c.close()));
    }
    const { differences, counts } = checked;
    return {
      schemaVersion: 1,
      mode: "exact",
      ok: differences.length === 0,
      hf: options.hf,
      mcore: options.mcore,
      layout: { ...built.plan.layout, spec: built.plan.spec, experts: built.plan.experts, dtype: built.plan.dtype ?? "keep" },
      filesChecked: counts.files,
      tensorsChecked: counts.tensors,
      bytesCompared: counts.bytes,
      threads,
      differences: differences.slice(0, MAX_REPORTED_DIFFERENCES),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await model.close();
  }
}

async function resolveTarget(
  options: VerifyExactOptions,
  iterationDir: string,
  firstRankDir: string,
  iteration: number | "release",
): Promise<TargetOptions> {
  const manifest = await readFile(join(options.mcore, MANIFEST_FILE), "utf8").then((t) => JSON.parse(t) as Record<string, unknown>).catch(() => undefined);
  let detected: Omit<TargetOptions, "iteration">;
  if (manifest !== undefined && typeof manifest["layout"] === "object") {
    detected = {
      layout: manifest["layout"] as TargetOptions["layout"],
      spec: manifest["spec"] as TargetOptions["spec"],
      experts: manifest["experts"] as TargetOptions["experts"],
      dtype: manifest["dtype"] === "keep" ? undefined : (manifest["dtype"] as TargetOptions["dtype"]),
    };
  } else {
    const path = join(iterationDir, firstRankDir, RANK_FILE);
    const source = await FileSource.open(path);
    try {
      const d = detectTarget((await readTorchCheckpoint(source)).root, path);
      detected = { layout: d.layout, spec: d.spec, experts: d.experts, dtype: d.dtype };
    } finally {
      await source.close();
    }
  }
  return { ...detected, iteration, ...stripUndefined(options.target ?? {}) };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The bytes of the rank files (one that cannot be read counts 0; the check reports it). */
async function rankFileBytes(folder: CheckpointFolder): Promise<number> {
  const sizes = await Promise.all(folder.rankDirs.map((dir) => stat(rankFileIn(folder, dir)).then((s) => s.size, () => 0)));
  return sizes.reduce((a, b) => a + b, 0);
}

/**
 * Orders HF tensors by where they lie in the shards, which is the checkpoint's own order (file,
 * then data offset); views of a fused tensor, unknown here, come last.
 */
function shardOrder(model: HfModel): (name: string) => number {
  const order = new Map([...model.checkpoint.tensors.keys()].map((name, i) => [name, i]));
  return (name) => order.get(name) ?? order.size;
}
