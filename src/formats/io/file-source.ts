import { readSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import type { ByteRange, ByteSource } from "./byte-source.js";
import { EndOfFileError, FileAccessError } from "./errors.js";
import { ReadModePolicy } from "./read-mode.js";

/** One Linux read(2) returns at most 0x7ffff000 bytes; stay well below. */
const MAX_READ_CHUNK = 1 << 30;

export interface FileSourceOptions {
  /** Never block the event loop on a read (default: blocking reads while they run at memory speed; see read-mode.ts). */
  readonly poolReadsOnly?: boolean;
}

/** A read-only FileHandle kept open for the whole run, read by position. */
export class FileSource implements ByteSource {
  private constructor(
    readonly name: string,
    readonly size: number,
    private readonly handle: FileHandle,
    private readonly mode: ReadModePolicy,
  ) {}

  static async open(path: string, options: FileSourceOptions = {}): Promise<FileSource> {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (cause) {
      throw new FileAccessError(path, "open for reading", cause);
    }
    const stat = await handle.stat();
    return new FileSource(path, stat.size, handle, new ReadModePolicy(options.poolReadsOnly !== true));
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(out, offset);
    return out;
  }

  /** Fills `target` completely from `offset`, looping over short reads. */
  async readInto(target: Uint8Array, offset: number): Promise<void> {
    this.checkBounds(offset, target.byteLength);
    await this.fill(target, offset, 0);
  }

  /**
   * Reads each range into a new array. From the page cache each is a blocking read on this
   * thread, with none of the promise round trips that `read` makes per call: a zip's local
   * headers, one small read per record, read 1.6x as fast this way (3,600 30-byte reads: 35
   * against 55 ms, 2 vCPUs).
   */
  async readRanges(ranges: readonly ByteRange[]): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (const { offset, length } of ranges) {
      this.checkBounds(offset, length);
      const target = new Uint8Array(length);
      const pending = this.fill(target, offset, 0);
      if (pending !== undefined) {
        await pending;
      }
      out.push(target);
    }
    return out;
  }

  private checkBounds(offset: number, length: number): void {
    if (offset < 0 || offset + length > this.size) {
      throw new EndOfFileError(this.name, offset, length, Math.max(0, this.size - offset));
    }
  }

  /**
   * Fills `target` from `offset`, its first `done` bytes read already: with blocking reads on
   * this thread (returning undefined once full) until the read mode sends one to the thread
   * pool (returning the promise of the rest).
   */
  private fill(target: Uint8Array, offset: number, done: number): Promise<void> | undefined {
    const length = target.byteLength;
    for (let at = done; at < length; ) {
      const want = Math.min(length - at, MAX_READ_CHUNK);
      if (this.mode.next() === "pool") {
        return this.readPooled(target, at, want, offset + at).then((bytesRead) => this.fill(target, offset, this.advance(offset, length, at, bytesRead)));
      }
      at = this.advance(offset, length, at, this.readBlocking(target, at, want, offset + at));
    }
    return undefined;
  }

  /** Where a fill goes on after a read of `bytesRead` at `at`; none is the end of the file. */
  private advance(offset: number, length: number, at: number, bytesRead: number): number {
    if (bytesRead === 0) {
      throw new EndOfFileError(this.name, offset, length, at);
    }
    return at + bytesRead;
  }

  private async readPooled(target: Uint8Array, at: number, length: number, position: number): Promise<number> {
    try {
      return (await this.handle.read(target, at, length, position)).bytesRead;
    } catch (cause) {
      throw this.readError(length, position, cause);
    }
  }

  private readBlocking(target: Uint8Array, at: number, length: number, position: number): number {
    const started = performance.now();
    let bytesRead: number;
    try {
      bytesRead = readSync(this.handle.fd, target, at, length, position);
    } catch (cause) {
      throw this.readError(length, position, cause);
    }
    this.mode.blockingRead(bytesRead, performance.now() - started);
    return bytesRead;
  }

  private readError(length: number, position: number, cause: unknown): FileAccessError {
    return new FileAccessError(this.name, `read ${length} bytes at offset ${position}`, cause);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
