import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { RankFileCheck, RankFileChecker, RankFileResult } from "./exact.js";
import { ConvertError } from "../errors.js";

/**
 * Rank files checked in worker threads, one file per thread at a time. Byte comparison is CPU
 * work (the reads come from the page cache at memory speed and memcmp follows them), so one
 * event loop keeps one core busy; threads use the others.
 *
 * Each thread opens the HF folder itself (config and safetensors headers: milliseconds) and is
 * sent each rank file's plan, so no thread rebuilds the conversion plan.
 */

/** The worker's entry point, beside this file once compiled (absent when running from TS sources). */
const WORKER_SCRIPT = fileURLToPath(new URL("./exact-worker.js", import.meta.url));

export interface WorkerData {
  readonly hfDir: string;
}

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

/** Whether the compiled worker script is there (it is in the package; not under a TS test runner). */
export function workerThreadsAvailable(): boolean {
  return existsSync(WORKER_SCRIPT);
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

  constructor(private readonly workers: readonly Worker[]) {
    this.idle = [...workers];
    for (const worker of workers) {
      worker.on("message", (reply: WorkerReply) => this.settle(reply));
      worker.on("error", (error: Error) => this.failAll(error));
      worker.on("exit", (code) => {
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
      pending.reject(new WorkerThreadError(reply.error.code, reply.error.message, reply.error.hint));
    } else {
      pending.resolve(reply.result);
    }
  }

  private failAll(error: Error): void {
    for (const pending of this.pending.values()) {
      pending.reject(error);
    }
    this.pending.clear();
  }
}

/** `threads` workers that check rank files against the HF folder `hfDir`. */
export function threadChecker(hfDir: string, threads: number): RankFileChecker {
  const workers = Array.from({ length: threads }, () => new Worker(WORKER_SCRIPT, { workerData: { hfDir } satisfies WorkerData }));
  return new ThreadChecker(workers);
}
