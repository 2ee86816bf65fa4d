import { existsSync } from "node:fs";
import { Worker, type MessagePort } from "node:worker_threads";
import type { JobRunner } from "./job-runner.js";
import { ConvertError } from "../errors.js";

/**
 * Jobs run in worker threads, each thread running its jobs one after another. Reading from the
 * page cache is a copy on the reading thread, and what follows it (a comparison) runs there too,
 * so one event loop keeps one core busy; threads use the others. The caller's own thread usually
 * runs jobs too, beside the pool.
 *
 * Each thread opens what its jobs read itself (once, at its start) and is sent each job whole, so
 * a job carries only where its bytes lie. The thread's script calls serveJobs with a way to open
 * that context and a way to run a job with it.
 */

/** The code a thread reports an error under when it is not a ConvertError: a bug. */
const INTERNAL = "internal";

export type PoolRequest<Job> = { readonly type: "job"; readonly id: number; readonly job: Job } | { readonly type: "close" };

export type PoolReply<Result> =
  | { readonly id: number; readonly result: Result }
  | { readonly id: number; readonly error: { readonly code: string; readonly message: string; readonly hint?: string } }
  | { readonly note: unknown };

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
 * Each thread's V8 young generation, in MiB (6: two 2 MiB semi-spaces and the large-object space
 * beside them). Left alone, V8 doubles a young generation up to 16 MiB per semi-space as the
 * bytes that outlive its collections add up, and a long verify's threads grew with the model.
 * Capped, verify runs as fast, in less memory (2 vCPUs, peak RSS; 8 threads: 216 against
 * 238-247 MiB on the bench's 1.1 GiB model and on a 4.3 GiB one alike; 2 threads on the 4.3 GiB
 * model: 99-100 against 104-107 MiB). The process's own thread cannot be capped this way (V8
 * reads that limit only at start-up); the CLI stops its growth instead (cli/heap-settings.ts),
 * which holds for the threads' too when they run from the CLI.
 */
export const WORKER_YOUNG_GENERATION_MB = 6;

export interface WorkerPoolOptions<Job> {
  /** What the threads are for, in errors ("a verify worker thread failed") and their code ("verify.thread-failed"). */
  readonly name: string;
  /** What a thread was doing with `job` when it failed, for that error ("checking HF tensor x"). */
  readonly doing: (job: Job) => string;
  /**
   * Jobs sent to a thread before it answers the first: the rest wait in its queue, so the thread
   * need not wait for the sending thread, which is busy with jobs of its own, to send it more.
   */
  readonly queuedPerThread: number;
  /** Called with what a thread's job sends while it runs (its `note` argument), such as progress. */
  readonly onNote?: (note: unknown) => void;
}

interface Pending<Result> {
  resolve(result: Result): void;
  reject(error: Error): void;
  readonly worker: Worker;
  readonly doing: string;
}

/** Pools whose threads run (made and not yet closed), for stopAllWorkerThreads. */
const livePools = new Set<{ stop(): void }>();
/** Set by stopAllWorkerThreads: a pool made after it is stopped at once. */
let allStopped = false;

/**
 * Ends every worker thread now, and any pool made later at once (on SIGINT/SIGTERM, before the
 * partial output is removed), so that none goes on creating files; their jobs are left
 * unanswered, since the process is about to exit.
 */
export function stopAllWorkerThreads(): void {
  allStopped = true;
  for (const pool of livePools) {
    pool.stop();
  }
}

/** Threads running `script` (which calls serveJobs); `run` sends a job to whichever has room in its queue. */
export class WorkerPool<Job, Result> implements JobRunner<Job, Result> {
  private readonly workers: readonly Worker[];
  private readonly idle: Worker[];
  private readonly waiting: ((worker: Worker) => void)[] = [];
  private readonly pending = new Map<number, Pending<Result>>();
  private nextId = 0;
  /** Set when a thread failed (it could not start, or crashed): every later job fails with it. */
  private failed: Error | undefined;
  private readonly exited = new Set<Worker>();
  /** Set once close() asked the threads to end. */
  private closing = false;
  /** Set once stop() ended them. */
  private stopped = false;

  constructor(script: string, workerData: unknown, threads: number, private readonly options: WorkerPoolOptions<Job>) {
    // execArgv: [] so that flags of this process that a worker cannot take (--input-type, -e) stay out
    const workerOptions = { workerData, execArgv: [], resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } };
    this.workers = Array.from({ length: threads }, () => new Worker(script, workerOptions));
    livePools.add(this);
    this.idle = Array.from({ length: options.queuedPerThread }, () => this.workers).flat();
    for (const worker of this.workers) {
      worker.on("message", (reply: PoolReply<Result>) => this.settle(reply));
      worker.on("error", (error: Error) => this.failAll(error, worker));
      worker.on("exit", (code) => {
        this.exited.add(worker);
        if (this.stopped) {
          return;
        }
        if (code !== 0 || !this.closing) {
          // a thread that ends unasked, even cleanly, leaves its jobs unanswered: fail them, never wait
          this.failAll(new Error(`internal: a ${options.name} worker thread exited with code ${code}${this.closing ? "" : " before it was asked to"}`), worker);
        }
      });
    }
    if (allStopped) {
      this.stop();
    }
  }

  /** How many jobs it takes at once. */
  get parallel(): number {
    return this.workers.length * this.options.queuedPerThread;
  }

  async run(job: Job): Promise<Result> {
    const worker = this.idle.pop() ?? (await new Promise<Worker>((resolve) => this.waiting.push(resolve)));
    const id = this.nextId++;
    try {
      return await new Promise<Result>((resolve, reject) => {
        if (this.failed !== undefined) {
          reject(this.failed);
          return;
        }
        this.pending.set(id, { resolve, reject, worker, doing: this.options.doing(job) });
        worker.postMessage({ type: "job", id, job } satisfies PoolRequest<Job>);
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

  /** Asks each thread to close what it opened and end; one that does not within a second is terminated. */
  async close(): Promise<void> {
    this.closing = true;
    livePools.delete(this);
    await Promise.all(
      this.workers.map(async (worker) => {
        if (this.exited.has(worker)) {
          return;
        }
        const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
        worker.postMessage({ type: "close" } satisfies PoolRequest<Job>);
        const timer = setTimeout(() => void worker.terminate(), 1000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  /** Terminates every thread without failing its jobs (see stopAllWorkerThreads). */
  stop(): void {
    this.stopped = true;
    livePools.delete(this);
    for (const worker of this.workers) {
      void worker.terminate();
    }
  }

  private settle(reply: PoolReply<Result>): void {
    if ("note" in reply) {
      this.options.onNote?.(reply.note);
      return;
    }
    const pending = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    if (pending === undefined) {
      return;
    }
    if ("error" in reply) {
      // a bug in the thread stays a bug here (the CLI's internal-error banner), not a user error
      const { code, message, hint } = reply.error;
      pending.reject(code === INTERNAL ? new Error(`in a ${this.options.name} worker thread: ${message}`) : new WorkerThreadError(code, message, hint));
    } else {
      pending.resolve(reply.result);
    }
  }

  /** Fails every pending and later job with one error, naming what `worker` (the thread that failed) was doing. */
  private failAll(error: Error, worker: Worker): void {
    const doing = [...this.pending.values()].find((p) => p.worker === worker)?.doing;
    const { name } = this.options;
    this.failed ??= new WorkerThreadError(`${name}.thread-failed`, `a ${name} worker thread failed${doing === undefined ? "" : ` while ${doing}`}: ${error.message}`);
    for (const pending of this.pending.values()) {
      pending.reject(this.failed);
    }
    this.pending.clear();
  }
}

/** What a worker thread opened for its jobs (files, buffers), and how to close it. */
export interface Opened<Context> {
  readonly context: Context;
  close(): Promise<void>;
}

/**
 * The worker side: opens its context at once (not on the first job, which would hold every
 * thread back at the start while the sending thread worked alone), then runs the jobs sent on
 * `port` one after another, so one context serves them all; or, with oneAtATime false (a context
 * that serves several at once), each as it comes, as many at once as the pool sends. A job may
 * send notes (progress) to the pool's onNote while it runs.
 */
export function serveJobs<Job, Result, Context>(
  port: MessagePort,
  open: () => Promise<Opened<Context>>,
  run: (job: Job, context: Context, note: (note: unknown) => void) => Promise<Result>,
  { oneAtATime = true }: { readonly oneAtATime?: boolean } = {},
): void {
  const note = (n: unknown) => port.postMessage({ note: n } satisfies PoolReply<Result>);
  const opened = open();
  opened.catch(() => undefined); // a failure to open is each job's answer
  let queue: Promise<unknown> = Promise.resolve();
  port.on("message", (request: PoolRequest<Job>) => {
    if (request.type === "close") {
      // a context that failed to open has nothing to close (and its failure was reported already)
      const closed = queue.then(() => opened.then((o) => o.close()));
      void closed.catch(() => undefined).finally(() => port.close());
      return;
    }
    const ran = (oneAtATime ? queue : Promise.resolve()).then(() => opened).then(({ context }) => run(request.job, context, note));
    // settled, not answered: the queue keeps no result
    const settled = ran.then(
      () => undefined,
      () => undefined,
    );
    queue = Promise.all([queue, settled]);
    ran.then(
      (result) => port.postMessage({ id: request.id, result } satisfies PoolReply<Result>),
      (error: unknown) => port.postMessage({ id: request.id, error: describeError(error) } satisfies PoolReply<Result>),
    );
  });
}

function describeError(error: unknown): { code: string; message: string; hint?: string } {
  if (error instanceof ConvertError) {
    return error.hint === undefined ? { code: error.code, message: error.message } : { code: error.code, message: error.message, hint: error.hint };
  }
  return { code: INTERNAL, message: error instanceof Error ? (error.stack ?? error.message) : String(error) };
}
