/**
 * Whether a positional read runs on the calling thread (pread, blocking) or on libuv's thread
 * pool (async). From the page cache a blocking read of 256 KiB takes about 15 µs, while the
 * thread-pool round trip alone costs about 40 µs, so blocking reads are 3-4x faster there
 * (measured on the bench's rank files: 16.6 vs 4.7 GB/s). A read that has to wait for the device
 * or the network blocks the whole process, though, and loses the overlap of several reads in
 * flight. So a file is read blocking while its reads complete at memory speed, and once several
 * of its recent ones did not, through the thread pool for a while before blocking is tried
 * again. A single slow read is not enough: on a busy machine about 1 in 300 page-cache reads
 * stalls for a few milliseconds (seen on the bench's 1.1 GiB model). Counting slow reads in a
 * window rather than in a row also catches a file whose reads alternate between the cache and
 * the device.
 *
 * The threshold (2 GB/s plus 0.1 ms) leaves room for the page faults of a freshly allocated
 * target buffer: 1 MiB page-cache reads ran at 4.2-4.8 GB/s into fresh buffers, faults included,
 * and at 9.2 GB/s into a reused one (2-vCPU VM).
 */
export type ReadMode = "blocking" | "pool";

/** A blocking read slower than this counts as waiting for the device: fixed cost plus bytes at 2 GB/s. */
const SLOW_FIXED_MS = 0.1;
const SLOW_BYTES_PER_MS = 2e6;
/** The last WINDOW blocking reads are remembered; SLOW_IN_WINDOW slow ones among them send the file's reads to the thread pool. */
const WINDOW = 16;
const SLOW_IN_WINDOW = 4;
/** Reads sent to the thread pool after that, before blocking is tried again. */
const POOL_RUN = 64;

export function isSlowRead(bytes: number, elapsedMs: number): boolean {
  return elapsedMs > SLOW_FIXED_MS + bytes / SLOW_BYTES_PER_MS;
}

/** One file's read-mode state: blocking until SLOW_IN_WINDOW of the last WINDOW blocking reads are slow, then POOL_RUN pool reads. */
export class ReadModePolicy {
  private poolLeft = 0;
  /** Bit i set: the i-th most recent blocking read was slow. */
  private recent = 0;

  constructor(private readonly allowBlocking = true) {}

  next(): ReadMode {
    if (!this.allowBlocking) {
      return "pool";
    }
    if (this.poolLeft > 0) {
      this.poolLeft--;
      return "pool";
    }
    return "blocking";
  }

  /** Reports how long a blocking read of `bytes` took. */
  blockingRead(bytes: number, elapsedMs: number): void {
    this.recent = ((this.recent << 1) | (isSlowRead(bytes, elapsedMs) ? 1 : 0)) & ((1 << WINDOW) - 1);
    if (countBits(this.recent) >= SLOW_IN_WINDOW) {
      this.recent = 0;
      this.poolLeft = POOL_RUN;
    }
  }
}

function countBits(mask: number): number {
  let n = 0;
  for (let m = mask; m !== 0; m &= m - 1) {
    n++;
  }
  return n;
}
