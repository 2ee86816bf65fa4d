import { existsSync } from "node:fs";
import { Worker, type MessagePort } from "node:worker_threads";
import type { ByteCheck } from "./byte-checks.js";
import type { PieceDifference } from "./compare-source.js";
import { newByteCheckContext, runByteCheck, type ByteCheckContext, type ByteChecker } from "./byte-checker.js";
import type { SourceSpace } from "../engine/source-space.js";
import { ConvertError } from "../errors.js";

/**
 * Byte checks (byte-checks.ts) run in worker threads, each running its checks one after another
 * (beside the checks the main thread runs itself). Reading from the page cache is a copy on the
 * reading thread, and comparing follows it, so one event loop keeps one core busy; threads use
 * the others.
 *
 * Each thread opens the source itself (for HF: config and safetensors headers, milliseconds) and
 * is sent each check whole (the pieces and where they lie), so no thread rebuilds the conversion
 * plan or rereads a rank file's header. The thread's script (commands/verify-worker.ts) calls
 * serveByteChecks with a way to open the source.
 */

/** The code a thread reports an error under when it is not a ConvertError: a bug. */
const INTERNAL = "internal";

export type WorkerRequest = { readonly type: "check"; readonly id: number; readonly check: ByteCheck } | { readonly type: "close" };

export type WorkerReply =
  | { readonly id: number; readonly differences: PieceDifference[] }
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

/**
 * Checks sent to a thread before it answers the first: the rest wait in its queue, so the thread
 * need not wait for this one's event loop to send it more. That loop is busy with checks of its
 * own, one HF tensor at a time (an embedding takes tens of milliseconds), and a thread got
 * through two queued expert weights in less. With 2, the thread sat idle for 100-160 of its
 * 740-780 ms of checking on the bench's 4.2 GiB model (2 vCPUs); with 6, for 20-40 ms, and the
 * checking took 760-795 against 815-835 ms.
 */
const CHECKS_QUEUED_PER_THREAD = 6;

interface Pending {
  resolve(differences: PieceDifference[]): void;
  reject(error: Error): void;
  readonly worker: Worker;
  /** What the check is about, for the error when its thread fails. */
  readonly what: string;
}

class ThreadChecker implements ByteChecker {
  private readonly idle: Worker[];
  private readonly waiting: ((worker: Worker) => void)[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  /** Set when a thread failed (it could not start, or crashed): every later check fails with it. */
  private failed: Error | undefined;
  private readonly exited = new Set<Worker>();
  /** Set once close() asked the threads to end. */
  private closing = false;

  constructor(private readonly workers: readonly Worker[]) {
    this.idle = Array.from({ length: CHECKS_QUEUED_PER_THREAD }, () => workers).flat();
    for (const worker of workers) {
      worker.on("message", (reply: WorkerReply) => this.settle(reply));
      worker.on("error", (error: Error) => this.failAll(error, worker));
      worker.on("exit", (code) => {
        this.exited.add(worker);
        if (code !== 0 || !this.closing) {
          // a thread that ends unasked, even cleanly, leaves its checks unanswered: fail them, never wait
          this.failAll(new Error(`internal: a verify worker thread exited with code ${code}${this.closing ? "" : " before it was asked to"}`), worker);
        }
      });
    }
  }

  get parallel(): number {
    return this.workers.length * CHECKS_QUEUED_PER_THREAD;
  }

  async check(check: ByteCheck): Promise<PieceDifference[]> {
    const worker = this.idle.pop() ?? (await new Promise<Worker>((resolve) => this.waiting.push(resolve)));
    const id = this.nextId++;
    try {
      return await new Promise<PieceDifference[]>((resolve, reject) => {
        if (this.failed !== undefined) {
          reject(this.failed);
          return;
        }
        this.pending.set(id, { resolve, reject, worker, what: check.kind === "source" ? `HF tensor ${check.source}` : check.label });
        worker.postMessage({ type: "check", id, check } satisfies WorkerRequest);
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
    this.closing = true;
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
      pending.resolve(reply.differences);
    }
  }

  /** Fails every pending and later check with one error, naming what `worker` (the thread that failed) was checking. */
  private failAll(error: Error, worker: Worker): void {
    const what = [...this.pending.values()].find((p) => p.worker === worker)?.what;
    this.failed ??= new WorkerThreadError("verify.thread-failed", `a verify worker thread failed${what === undefined ? "" : ` while checking ${what}`}: ${error.message}`);
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
 * model: 99-100 against 104-107 MiB). The process's own thread cannot be capped this way (V8
 * reads that limit only at start-up); the CLI stops its growth instead (cli/heap-settings.ts),
 * which holds for the threads' too when verify runs from the CLI.
 */
export const WORKER_YOUNG_GENERATION_MB = 6;

/** `threads` workers running `script` (which calls serveByteChecks), each given `workerData`. */
export function threadChecker(script: string, workerData: unknown, threads: number): ByteChecker {
  // execArgv: [] so that flags of this process that a worker cannot take (--input-type, -e) stay out
  const options = { workerData, execArgv: [], resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } };
  return new ThreadChecker(Array.from({ length: threads }, () => new Worker(script, options)));
}

/** An opened source for a worker thread: what rank files are checked against, and its cleanup. */
export interface OpenedSource {
  readonly space: SourceSpace;
  close(): Promise<void>;
}

/**
 * The worker side: opens the source at once, then runs the checks sent on `port` one after
 * another. Opening takes tens of milliseconds (the HF model's headers); done on the first check,
 * it held every thread back at the start of the checking, while the main thread checked alone.
 */
export function serveByteChecks(port: MessagePort, open: () => Promise<OpenedSource>): void {
  const opened: Promise<{ source: OpenedSource; context: ByteCheckContext }> = open().then((source) => ({ source, context: newByteCheckContext(source.space) }));
  opened.catch(() => undefined); // a failure to open is each check's answer
  // checks run one after another (queued), so one context serves them all
  let queue: Promise<unknown> = Promise.resolve();
  port.on("message", (request: WorkerRequest) => {
    if (request.type === "close") {
      // a source that failed to open has nothing to close (and its failure was reported already)
      const closed = queue.then(() =>
        opened.then(async ({ source, context }) => {
          await context.files.close();
          await source.close();
        }),
      );
      void closed.catch(() => undefined).finally(() => port.close());
      return;
    }
    const checked = queue.then(() => opened).then(({ context }) => runByteCheck(request.check, context));
    queue = checked.catch(() => undefined);
    checked
      .then(
        (differences) => port.postMessage({ id: request.id, differences } satisfies WorkerReply),
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
