/** This process's share of a conversion split among `count` independent processes. */
export interface WorkerShare {
  /** 0-based. */
  readonly index: number;
  readonly count: number;
}

/**
 * Deals items to `count` workers, largest first, each to the least-loaded worker (ties to the
 * lowest index): every worker computes the same deal from the same plan, with no coordination.
 * Returns, per worker, the indices of its items in their original order.
 */
export function dealByBytes(sizes: readonly number[], count: number): number[][] {
  const deal: number[][] = Array.from({ length: count }, () => []);
  const load = new Array<number>(count).fill(0);
  const order = sizes.map((size, i) => ({ size, i })).sort((a, b) => b.size - a.size || a.i - b.i);
  for (const { size, i } of order) {
    let best = 0;
    for (let w = 1; w < count; w++) {
      if ((load[w] ?? 0) < (load[best] ?? 0)) {
        best = w;
      }
    }
    deal[best]?.push(i);
    load[best] = (load[best] ?? 0) + size;
  }
  return deal.map((items) => items.sort((a, b) => a - b));
}

export function formatShare(share: WorkerShare): string {
  return `${share.index}/${share.count}`;
}
