import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { openCompareContext, planCompareJobs, runCompareJob, type CompareJob, type CompareJobResult, type RangeDifference, type TensorPair } from "./compare-hf-ranges.js";
import { MAX_REPORTED_DIFFERENCES, type Difference, type ExactReport } from "./report.js";
import { inThisThread, runJobs, type JobRunner } from "../engine/job-runner.js";
import { threadCount } from "../engine/thread-count.js";
import { WorkerPool, workerScriptExists } from "../engine/worker-pool.js";
import { openSafetensorsFolder, type SafetensorsCheckpoint } from "../formats/safetensors/folder.js";
import { formatShape, sameShape } from "../model/tensor.js";

export interface CompareHfOptions {
  /** Threads that compare at once, this one included (--jobs); default: one per CPU. */
  readonly jobs?: number;
  /** Forced on (one thread per job) or off (this thread alone); default: decided by the machine and the bytes. */
  readonly threads?: boolean;
  /** Bytes of tensors per job (default JOB_BYTES); smaller ones cut even a small tensor across threads. */
  readonly jobBytes?: number;
}

/**
 * Bytes of tensors per job. Threads share out jobs as they free up, so they finish within about
 * one job of each other; a large tensor is cut into jobs of this size.
 */
const JOB_BYTES = 32 << 20;

/** Jobs sent to a worker thread before it answers the first: one in its queue while it runs one. */
const JOBS_QUEUED_PER_THREAD = 2;

/**
 * On one or two CPUs, the bytes (both folders) below which this thread compares alone. A worker
 * starts in about 0.1 s of CPU (its modules; it reads no header), which the comparison must
 * win back on a core it shares. 2 vCPUs, warm, two threads against one (alternating runs): 1.15-1.65
 * against 1.62-2.00 s on the bench's 4.2 GiB model (9.2 GB), 0.42-0.58 against 0.52-0.68 s on its
 * 1.1 GiB one (2.3 GB), even at 1.2 GB (0.33-0.46 against 0.36-0.47 s), and slower at 0.6 GB
 * (0.33-0.40 against 0.28-0.36 s).
 */
const MIN_HF_BYTES_FOR_THREADS_ON_TWO_CPUS = 2e9;

/** The worker threads' script, beside this file once compiled. */
const WORKER_SCRIPT = fileURLToPath(new URL("./compare-hf-worker.js", import.meta.url));

/** Two HF folders hold the same tensors, names, dtypes, shapes and bytes (e.g. after hf -> mcore -> hf). */
export async function compareHfFolders(a: string, b: string, options: CompareHfOptions = {}): Promise<ExactReport> {
  const started = performance.now();
  const left = await openSafetensorsFolder(a);
  const right = await openSafetensorsFolder(b).catch(async (error: unknown) => {
    await left.close();
    throw error;
  });
  // the comparing threads open the shards themselves, by the paths in their jobs
  await Promise.all([left.close(), right.close()]);
  const here = openCompareContext();
  const runners: JobRunner<CompareJob, CompareJobResult>[] = [inThisThread(here.context, runCompareJob, () => here.close())];
  try {
    const { differences, comparable } = unmatched(left, right, a, b);
    const jobs = planCompareJobs(comparable, options.jobBytes ?? JOB_BYTES);
    const bytesBothSides = 2 * comparable.reduce((sum, t) => sum + t.left.byteLength, 0);
    const threads = workerScriptExists(WORKER_SCRIPT)
      ? threadCount({
          jobs: options.jobs ?? availableParallelism(),
          units: jobs.length,
          forced: options.threads,
          cpus: availableParallelism(),
          bytes: bytesBothSides,
          minBytesOnTwoCpus: MIN_HF_BYTES_FOR_THREADS_ON_TWO_CPUS,
        })
      : 1;
    if (threads > 1) {
      runners.push(
        new WorkerPool<CompareJob, CompareJobResult>(WORKER_SCRIPT, {}, threads - 1, {
          name: "verify",
          doing: (job) => `comparing ${job.map((r) => r.name).join(", ")}`,
          queuedPerThread: JOBS_QUEUED_PER_THREAD,
        }),
      );
    }
    let bytes = 0;
    const lowest = new Map<string, RangeDifference>();
    await runJobs(jobs, runners, (result) => {
      bytes += result.bytes;
      for (const d of result.differences) {
        if ((lowest.get(d.name)?.element ?? Infinity) > d.element) {
          lowest.set(d.name, d);
        }
      }
    });
    for (const d of lowest.values()) {
      differences.push({ file: b, key: d.name, hfTensors: [d.name], problem: d.problem });
    }
    differences.sort((x, y) => x.key.localeCompare(y.key));
    return {
      schemaVersion: 1,
      mode: "exact",
      ok: differences.length === 0,
      hf: a,
      mcore: b,
      layout: "hf-vs-hf",
      filesChecked: left.files.length + right.files.length,
      tensorsChecked: left.tensors.size,
      bytesCompared: bytes,
      threads,
      differences: differences.slice(0, MAX_REPORTED_DIFFERENCES),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await Promise.all(runners.map((r) => r.close()));
  }
}

/**
 * The tensors missing on either side, or of another dtype or shape, as differences; and the
 * tensors left to compare byte by byte, in the first folder's order (file, then data offset: a
 * cold cache reads each file front to back).
 */
function unmatched(
  left: SafetensorsCheckpoint,
  right: SafetensorsCheckpoint,
  a: string,
  b: string,
): { differences: Difference[]; comparable: TensorPair[] } {
  const differences: Difference[] = [];
  for (const [one, other, oneName, otherName] of [[left, right, a, b], [right, left, b, a]] as const) {
    for (const name of one.tensors.keys()) {
      if (!other.tensors.has(name)) {
        differences.push({ file: otherName, key: name, hfTensors: [name], problem: `missing (present only in ${oneName})` });
      }
    }
  }
  const comparable: TensorPair[] = [];
  for (const l of left.tensors.values()) {
    const r = right.tensors.get(l.name);
    if (r !== undefined && (l.dtype !== r.dtype || !sameShape(l.shape, r.shape))) {
      differences.push({ file: b, key: l.name, hfTensors: [l.name], problem: `${r.dtype} ${formatShape(r.shape)}; expected ${l.dtype} ${formatShape(l.shape)}` });
    } else if (r !== undefined) {
      comparable.push({ left: l, right: r });
    }
  }
  return { differences, comparable };
}
