import type { MessagePort } from "node:worker_threads";
import type { ByteCheck } from "./byte-checks.js";
import type { PieceDifference } from "./compare-source.js";
import { newByteCheckContext, runByteCheck, type ByteCheckContext, type ByteChecker } from "./byte-checker.js";
import type { SourceSpace } from "../engine/source-space.js";
import { serveJobs, WorkerPool } from "../engine/worker-pool.js";

/**
 * Byte checks (byte-checks.ts) run in worker threads (engine/worker-pool.ts), beside the checks
 * the main thread runs itself. Each thread opens the source itself (for HF: config and
 * safetensors headers, milliseconds) and is sent each check whole (the pieces and where they lie),
 * so no thread rebuilds the conversion plan or rereads a rank file's header. The thread's script
 * (commands/verify-worker.ts) calls serveByteChecks with a way to open the source.
 */

/**
 * Checks sent to a thread before it answers the first. The main thread is busy with checks of its
 * own, and a thread got through two queued expert weights in less than one of them. With 2, the
 * thread sat idle for 100-160 of its 740-780 ms of checking on the bench's 4.2 GiB model (2
 * vCPUs); with 6, for 20-40 ms, and the checking took 760-795 against 815-835 ms. With checks cut
 * to windows of about 32 MiB (byte-checks.ts), 3 queued left the thread waiting 0-105 ms per run
 * there against 0-9 ms with 6, which cost more than the shorter tail it gave (0-25 against 15-83 ms).
 */
const CHECKS_QUEUED_PER_THREAD = 6;

/** `threads` workers running `script` (which calls serveByteChecks), each given `workerData`. */
export function threadChecker(script: string, workerData: unknown, threads: number): ByteChecker {
  return new WorkerPool<ByteCheck, PieceDifference[]>(script, workerData, threads, {
    name: "verify",
    doing: (check) => `checking ${check.kind === "source" ? `HF tensor ${check.source}` : check.label}`,
    queuedPerThread: CHECKS_QUEUED_PER_THREAD,
  });
}

/** An opened source for a worker thread: what rank files are checked against, and its cleanup. */
export interface OpenedSource {
  readonly space: SourceSpace;
  close(): Promise<void>;
}

/** The worker side: opens the source at once, then runs the checks sent on `port` one after another. */
export function serveByteChecks(port: MessagePort, open: () => Promise<OpenedSource>): void {
  serveJobs(
    port,
    async () => {
      const source = await open();
      const context = newByteCheckContext(source.space);
      return {
        context,
        close: async () => {
          await context.files.close();
          await source.close();
        },
      };
    },
    (check: ByteCheck, context: ByteCheckContext) => runByteCheck(check, context),
  );
}
