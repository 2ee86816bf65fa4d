import { open, type FileHandle } from "node:fs/promises";
import { FileAccessError } from "./errors.js";

/** Small writes are copied into one reused buffer of this size and written together. */
const COALESCE_BYTES = 8 << 20;
/** Writes at least this large go straight to the file. */
const DIRECT_BYTES = 2 << 20;

/**
 * After this many bytes a file's data is flushed to the device in the background (datasync not
 * awaited), so the disk writes while the next bytes are produced. Without it a large file sits
 * in the page cache until its closing fsync (Linux starts writing back only at
 * dirty_background_ratio, 10% of memory by default) and the disk idles while we compute.
 */
const BACKGROUND_SYNC_BYTES = 64 << 20;
/**
 * Background flushes in flight at once, process-wide: each holds a libuv pool thread (4 by
 * default, shared by all of a process's threads), and the writes need the others.
 */
const MAX_BACKGROUND_SYNCS = 2;
/** Flushes in flight; worker threads that write count in the same one (shareBackgroundSyncs). */
let backgroundSyncs = new Int32Array(new SharedArrayBuffer(4));

/** The flush count of this thread, to hand to a worker thread's shareBackgroundSyncs. */
export function backgroundSyncCounter(): SharedArrayBuffer {
  return backgroundSyncs.buffer as SharedArrayBuffer;
}

/** Counts this thread's background flushes in another thread's counter (backgroundSyncCounter). */
export function shareBackgroundSyncs(counter: SharedArrayBuffer): void {
  backgroundSyncs = new Int32Array(counter);
}

function takeSyncSlot(): boolean {
  for (;;) {
    const inFlight = Atomics.load(backgroundSyncs, 0);
    if (inFlight >= MAX_BACKGROUND_SYNCS) {
      return false;
    }
    if (Atomics.compareExchange(backgroundSyncs, 0, inFlight, inFlight + 1) === inFlight) {
      return true;
    }
  }
}

/** Coalescing buffers of closed sinks, kept warm for the next file (no fresh page faults). */
const spare: Uint8Array[] = [];
const MAX_SPARE = 8;

/**
 * A file written front to back. `write` is done with the caller's bytes when it resolves (small
 * ones are copied into a reused buffer, large ones are written), so callers may reuse them.
 * `position` is the number of bytes accepted so far (the offset of the next byte).
 */
export class FileSink {
  private buffer: Uint8Array | undefined;
  private fill = 0;
  private written = 0;
  private syncedTo = 0;
  private syncing: Promise<void> | undefined;
  private syncError: unknown;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  static async create(path: string): Promise<FileSink> {
    try {
      return new FileSink(path, await open(path, "wx"));
    } catch (cause) {
      throw new FileAccessError(path, "create", cause);
    }
  }

  get position(): number {
    return this.written + this.fill;
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (bytes.byteLength === 0) {
      return;
    }
    if (bytes.byteLength >= DIRECT_BYTES) {
      await this.flush();
      await this.writeFully(bytes);
      return;
    }
    const buffer = (this.buffer ??= spare.pop() ?? new Uint8Array(COALESCE_BYTES));
    if (this.fill + bytes.byteLength > buffer.byteLength) {
      await this.flush();
    }
    buffer.set(bytes, this.fill);
    this.fill += bytes.byteLength;
  }

  async flush(): Promise<void> {
    if (this.fill === 0 || this.buffer === undefined) {
      return;
    }
    const pending = this.buffer.subarray(0, this.fill);
    this.fill = 0;
    await this.writeFully(pending);
  }

  /** Flushes, fsyncs and closes. */
  async close(): Promise<void> {
    try {
      await this.flush();
      await this.syncing;
      this.throwIfSyncFailed();
      await this.handle.sync();
    } finally {
      this.recycle();
      await this.handle.close();
    }
  }

  /** Closes without syncing (used when the file is about to be removed). */
  async abandon(): Promise<void> {
    this.fill = 0;
    this.recycle();
    await this.syncing;
    await this.handle.close().catch(() => undefined);
  }

  private recycle(): void {
    if (this.buffer !== undefined && spare.length < MAX_SPARE) {
      spare.push(this.buffer);
    }
    this.buffer = undefined;
  }

  /** Starts a background datasync when enough bytes were written since the last one. */
  private maybeSyncInBackground(): void {
    if (this.syncing !== undefined || this.written - this.syncedTo < BACKGROUND_SYNC_BYTES || !takeSyncSlot()) {
      return;
    }
    const counter = backgroundSyncs;
    this.syncedTo = this.written;
    this.syncing = this.handle
      .datasync()
      .catch((cause: unknown) => {
        this.syncError ??= cause;
      })
      .finally(() => {
        Atomics.sub(counter, 0, 1);
        this.syncing = undefined;
      });
  }

  private throwIfSyncFailed(): void {
    if (this.syncError !== undefined) {
      throw new FileAccessError(this.path, "flush to the device", this.syncError);
    }
  }

  private async writeFully(bytes: Uint8Array): Promise<void> {
    this.throwIfSyncFailed();
    let done = 0;
    while (done < bytes.byteLength) {
      let bytesWritten: number;
      try {
        ({ bytesWritten } = await this.handle.write(bytes, done, bytes.byteLength - done, this.written));
      } catch (cause) {
        throw new FileAccessError(this.path, "write", cause);
      }
      done += bytesWritten;
      this.written += bytesWritten;
    }
    this.maybeSyncInBackground();
  }
}
