import { formatShare, type WorkerShare } from "../engine/worker-split.js";
import type { WriteOutcome } from "../engine/write-megatron.js";

/** What a worker of a split run says: its share is written, and whether it published the checkpoint. */
export function workerLine(out: string, share: WorkerShare, outcome: WriteOutcome, seconds: number): string {
  const head = `worker ${formatShare(share)}: wrote its share in ${seconds.toFixed(2)} s; ${outcome.workersDone} of ${share.count} workers done`;
  if (outcome.published) {
    return `${head}; checked every rank file is there and published ${out}`;
  }
  return outcome.publishing === undefined ? `${head}; the last worker to finish publishes ${out}` : `${head}; publishing: ${outcome.publishing}`;
}

export function workerJson(share: WorkerShare | undefined, outcome: WriteOutcome | undefined): Record<string, unknown> {
  return share === undefined || outcome === undefined ? {} : { worker: formatShare(share), workersDone: outcome.workersDone, published: outcome.published };
}

/** How many threads wrote the rank files, for --json (absent when nothing was written). */
export function threadsJson(outcome: WriteOutcome | undefined): Record<string, unknown> {
  return outcome === undefined ? {} : { threads: outcome.threads };
}

/** ", in N threads" when more than one wrote the rank files. */
export function threadsText(outcome: WriteOutcome | undefined): string {
  return outcome === undefined || outcome.threads <= 1 ? "" : `, in ${outcome.threads} threads`;
}
