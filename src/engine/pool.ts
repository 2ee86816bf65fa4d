/**
 * Runs `task` over `items` in order with at most `jobs` in flight; the first failure stops new
 * starts. Each task is told its lane (0..jobs-1): a lane runs one task at a time.
 */
export async function runPool<T>(items: readonly T[], jobs: number, task: (item: T, lane: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (lane: number): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++] as T;
      try {
        await task(item, lane);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, (_, lane) => worker(lane)));
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (rejected !== undefined) {
    throw rejected.reason;
  }
}
