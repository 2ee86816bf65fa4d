import { existsSync } from "node:fs";
import { Worker, type MessagePort } from "node:worker_threads";
import { newComparePools } from "./compare-tensor.js";
import { checkRankFile, type RankFileCheck, type RankFileChecker, type RankFileResult } from "./exact.js";
import type { SourceSpace } from "../engine/source-space.js";
import { ConvertError } from "../errors.js";

/**
 * Rank files checked in worker threads, one file per thread at a time. Byte comparison is CPU
 * work (the reads come from the page cache at memory speed and memcmp follows them), so one
 * event loop keeps one core busy; threads use the others.
 *
 * Each thread opens the source itself (for HF: config and safetensors headers, milliseconds) and
 * is sent each rank file's plan, so no thread rebuilds the conversion plan. The thread's script
 * (commands/verify-worker.ts) calls serveRankFileChecks with a way to open the source.
 */

/** The code a thread reports an error under when it is not a ConvertError: a bug. */
const INTERNAL = "internal";

export type WorkerRequest = { readonly type: "check"; readonly id: number; readonly job: RankFileCheck } | { readonly type: "close" };

export type WorkerReply =
  | { readonly id: number; readonly result: RankFileResult }
  | { readonly id: number; readonly error: { readonly code: string; readonly message: string; readonly hint?: string } };

/** An error a worker thread reported, rethrown here with its code, message and hint unchanged. */
export class WorkerThreadError extends ConvertError {
  readonly code: string;
  constructor(code: string, message: string, hint?: string) {
    super(message, hint === undefined ? undefined : { hint });
    this.code = code;
  }
}

/** Whether a worker script is there (a compiled one is in the package; not under a TS test runner). */
export function workerScriptExists(script: string): boolean {
  return script.endsWith(".js") && existsSync(script);
}

interface Pending {
  resolve(result: RankFileResult): void;
  reject(error: Error): void;
}

class ThreadChecker implements RankFileChecker {
  private readonly idle: Worker[];
  private readonly waiting: ((worker: Worker) => void)[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  /** Set when a thread failed (it could not start, or crashed): every later check fails with it. */
  private failed: Error | undefined;
  private readonly exited = new Set<Worker>();

  constructor(private readonly workers: readonly Worker[]) {
    this.idle = [...workers];
    for (const worker of workers) {
      worker.on("message", (reply: WorkerReply) => this.settle(reply));
      worker.on("error", (error: Error) => this.failAll(error));
      worker.on("exit", (code) => {
        this.exited.add(worker);
        if (code !== 0) {
          this.failAll(new Error(`internal: a verify worker thread exited with code ${code}`));
        }
      });
    }
  }

  async check(job: RankFileCheck): Promise<RankFileResult> {
    const worker = this.idle.pop() ?? (await new Promise<Worker>((resolve) => this.waiting.push(resolve)));
    const id = this.nextId++;
    try {
      return await new Promise<RankFileResult>((resolve, reject) => {
        if (this.failed !== undefined) {
          reject(this.failed);
          return;
        }
        this.pending.set(id, { resolve, reject });
        worker.postMessage({ type: "check", id, job } satisfies WorkerRequest);
      });
    } finally {
      const next = this.waiting.shift();
      if (next === undefined) {
        this.idle.push(worker);
      } else {
        next(worker);
      }
    }
  }

  /** Asks each thread to close its files and end; one that does not within a second is terminated. */
  async close(): Promise<void> {
    await Promise.all(
      this.workers.map(async (worker) => {
        if (this.exited.has(worker)) {
          return;
        }
        const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
        worker.postMessage({ type: "close" } satisfies WorkerRequest);
        const timer = setTimeout(() => void worker.terminate(), 1000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  private settle(reply: WorkerReply): void {
    const pending = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    if (pending === undefined) {
      return;
    }
    if ("error" in reply) {
      // a bug in the thread stays a bug here (the CLI's internal-error banner), not a user error
      const { code, message, hint } = reply.error;
      pending.reject(code === INTERNAL ? new Error(`in a verify worker thread: ${message}`) : new WorkerThreadError(code, message, hint));
    } else {
      pending.resolve(reply.result);
    }
  }

  private failAll(error: Error): void {
    this.failed ??= new WorkerThreadError("verify.thread-failed", `a verify worker thread failed: ${error.message}`);
    for (const pending of this.pending.values()) {
      pending.reject(this.failed);
    }
    this.pending.clear();
  }
}

/**
 * Each thread's V8 young generation, in MiB (6: two 2 MiB semi-spaces and the large-object space
 * beside them). Left alone, V8 doubles a young generation up to 16 MiB per semi-space as the
 * bytes that outlive its collections add up, and a long check's threads grew with the model.
 * Capped, the check runs as fast, in less memory (2 vCPUs, peak RSS; 8 threads: 216 against
 * 238-247 MiB on the bench's 1.1 GiB model and on a 4.3 GiB one alike; 2 threads on the 4.3 GiB
 * model: 99-100 against 104-107 MiB). The process's own thread cannot be capped this way: V8
 * reads its limit only at start-up (README, Benchmark).
 */
export const WORKER_YOUNG_GENERATION_MB = 6;

/** `threads` workers running `script` (which calls serveRankFileChecks), each given `workerData`. */
export function threadChecker(script: string, workerData: unknown, threads: number): RankFileChecker {
  // execArgv: [] so that flags of this process that a worker cannot take (--input-type, -e) stay out
  const options = { workerData, execArgv: [], resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } };
  return new ThreadChecker(Array.from({ length: threads }, () => new Worker(script, options)));
}

/** An opened source for a worker thread: what rank files are checked against, and its cleanup. */
export interface OpenedSource {
  readonly space: SourceSpace;
  close(): Promise<void>;
}

/** The worker side: checks the rank files sent on `port`, one at a time; opens the source on the first. */
export function serveRankFileChecks(port: MessagePort, open: () => Promise<OpenedSource>): void {
  let source: Promise<OpenedSource> | undefined;
  const pools = newComparePools(); // the parent sends this thread one check at a time
  port.on("message", (request: WorkerRequest) => {
    if (request.type === "close") {
      // a source that failed to open has nothing to close (and its failure was reported already)
      void (source?.then((s) => s.close()) ?? Promise.resolve()).catch(() => undefined).finally(() => port.close());
      return;
    }
    source ??= open();
    source
      .then((s) => checkRankFile(request.job, s.space, pools))
      .then(
        (result) => port.postMessage({ id: request.id, result } satisfies WorkerReply),
        (error: unknown) => port.postMessage({ id: request.id, error: describeError(error) } satisfies WorkerReply),
      );
  });
}

function describeError(error: unknown): { code: string; message: string; hint?: string } {
  if (error instanceof ConvertError) {
    return error.hint === undefined ? { code: error.code, message: error.message } : { code: error.code, message: error.message, hint: error.hint };
  }
  return { code: INTERNAL, message: error instanceof Error ? (error.stack ?? error.message) : String(error) };
}
