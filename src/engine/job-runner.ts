import { runPool } from "./pool.js";

/** Runs jobs, `parallel` at a time: this thread (inThisThread) or worker threads (WorkerPool). */
export interface JobRunner<Job, Result> {
  /** How many jobs it takes at once. */
  readonly parallel: number;
  run(job: Job): Promise<Result>;
  close(): Promise<void>;
}

/**
 * Runs jobs in this thread, `parallel` at a time (default one: a `context` that serves one at a
 * time; reads from the page cache are copies on this thread anyway). Each job starts from the
 * event loop: reads that complete at once chain promise callbacks without end, and worker
 * threads' answers would wait for this thread's last job.
 */
export function inThisThread<Job, Result, Context>(
  context: Context,
  run: (job: Job, context: Context) => Promise<Result>,
  close: () => Promise<void>,
  parallel = 1,
): JobRunner<Job, Result> {
  return {
    parallel,
    run: async (job) => {
      await new Promise((resolve) => setImmediate(resolve));
      return run(job, context);
    },
    close,
  };
}

/** Runs `jobs` in order on all `runners` at once (each as many at a time as it takes), the next going to whichever is free first. */
export async function runJobs<Job, Result>(jobs: readonly Job[], runners: readonly JobRunner<Job, Result>[], each: (result: Result) => void): Promise<void> {
  const lanes = runners.flatMap((r) => Array.from({ length: r.parallel }, () => r));
  await runPool(jobs, lanes.length, async (job, lane) => {
    each(await (lanes[lane] as JobRunner<Job, Result>).run(job));
  });
}
