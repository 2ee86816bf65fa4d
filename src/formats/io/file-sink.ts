import { open, type FileHandle } from "node:fs/promises";
import { FileAccessError } from "./errors.js";

/** Small writes are gathered into one buffer of this size before they reach the disk. */
const COALESCE_BYTES = 4 << 20;

/**
 * A file written front to back. Small writes are coalesced; large ones go straight to the
 * handle. `position` is the number of bytes accepted so far (the offset of the next byte).
 */
export class FileSink {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private written = 0;

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
    return this.written + this.pendingBytes;
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (bytes.byteLength === 0) {
      return;
    }
    if (bytes.byteLength >= COALESCE_BYTES) {
      await this.flush();
      await this.writeFully(bytes);
      return;
    }
    this.pending.push(bytes);
    this.pendingBytes += bytes.byteLength;
    if (this.pendingBytes >= COALESCE_BYTES) {
      await this.flush();
    }
  }

  async flush(): Promise<void> {
    if (this.pendingBytes === 0) {
      return;
    }
    const joined = this.pending.length === 1 ? (this.pending[0] as Uint8Array) : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    await this.writeFully(joined);
  }

  /** Flushes, fsyncs and closes. */
  async close(): Promise<void> {
    try {
      await this.flush();
      await this.handle.sync();
    } finally {
      await this.handle.close();
    }
  }

  /** Closes without syncing (used when the file is about to be removed). */
  async abandon(): Promise<void> {
    this.pending = [];
    this.pendingBytes = 0;
    await this.handle.close().catch(() => undefined);
  }

  private async writeFully(bytes: Uint8Array): Promise<void> {
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
  }
}
