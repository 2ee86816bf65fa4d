import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import type { McoreInputOptions } from "./mcore-input.js";
import type { RankFileThreads } from "../engine/rank-file-threads.js";
import { threadCount } from "../engine/thread-count.js";
import { workerScriptExists } from "../engine/worker-pool.js";
import type { ConversionPlan } from "../mapping/plan.js";

/** What a writer thread opens to read from: the HF folder (hf2mcore) or the Megatron checkpoint (reshard). */
export type WriteSource =
  | { readonly kind: "hf"; readonly dir: string }
  | { readonly kind: "mcore"; readonly dir: string; readonly options: McoreInputOptions };

/** The writer threads' script, beside this file once compiled. */
const WORKER_SCRIPT = fileURLToPath(new URL("./write-worker.js", import.meta.url));

/**
 * On one or two CPUs one thread writes everything, whatever the size. There, `hf2mcore` TP4 EP4 of
 * the bench's 1.1 GiB model (1.7 GB written, 2 vCPUs, alternating runs) took 1.79-2.14 s in two
 * threads against 1.67-2.65 s in one into memory (tmpfs), and 3.04-3.94 against 3.00-4.88 s onto
 * the disk, for 0.4-0.5 s more CPU: one thread already kept both cores busy (its own CPU was
 * 1.2-1.5 s of 1.4-1.8 s into tmpfs, beside the kernel's copies on libuv's threads). That busy
 * thread is what more CPUs relieve: on 16 CPUs the one-thread run wrote 0.71 GB/s against the copy
 * baseline's 0.93 GB/s (1.31x). Threads there are not measured yet (test/device/bench.sh does).
 */
const MIN_BYTES_FOR_THREADS_ON_TWO_CPUS = Number.POSITIVE_INFINITY;

/**
 * How a plan's rank files are spread over threads: forced on (true) or off (false), or by
 * default up to one thread per CPU (see engine/thread-count.ts); undefined: this thread only.
 */
export function writerThreads(plan: ConversionPlan, jobs: number, forced: boolean | undefined, source: WriteSource): RankFileThreads | undefined {
  if (!workerScriptExists(WORKER_SCRIPT)) {
    return undefined;
  }
  const count = threadCount({
    jobs,
    units: plan.files.length,
    forced,
    cpus: availableParallelism(),
    bytes: plan.totalBytes,
    minBytesOnTwoCpus: MIN_BYTES_FOR_THREADS_ON_TWO_CPUS,
  });
  return count > 1 ? { script: WORKER_SCRIPT, source, count } : undefined;
}
