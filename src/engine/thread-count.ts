/** How many threads a job spread over threads gets, and when threads do not pay for their start. */
export interface ThreadChoice {
  /** Threads wanted at most (--jobs). */
  readonly jobs: number;
  /** Units of work that can go to different threads: no more threads than these. */
  readonly units: number;
  /** Forced on (one thread per job) or off (one thread); undefined: decided here. */
  readonly forced: boolean | undefined;
  readonly cpus: number;
  /** Bytes the job reads. */
  readonly bytes: number;
  /**
   * On one or two CPUs, the bytes below which one thread does it sooner: a worker thread's start
   * costs CPU that a core shared with the main thread would spend on the job itself.
   */
  readonly minBytesOnTwoCpus: number;
}

/**
 * Forced on, exactly as many threads as jobs (at most one per unit); forced off or one job, one
 * (the calling thread); by default one per CPU at most (each thread keeps a core busy), and on a
 * machine of one or two CPUs, one below `minBytesOnTwoCpus`.
 */
export function threadCount(c: ThreadChoice): number {
  const wanted = Math.min(c.jobs, c.units);
  if (wanted <= 1 || c.forced === false) {
    return 1;
  }
  if (c.forced === true) {
    return wanted;
  }
  return c.cpus <= 2 && c.bytes < c.minBytesOnTwoCpus ? 1 : Math.min(wanted, c.cpus);
}
