import { readSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import type { ByteSource } from "./byte-source.js";
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
    const length = target.byteLength;
    if (offset < 0 || offset + length > this.size) {
      throw new EndOfFileError(this.name, offset, length, Math.max(0, this.size - offset));
    }
    let done = 0;
    while (done < length) {
      const want = Math.min(length - done, MAX_READ_CHUNK);
      const bytesRead = await this.readOnce(target, done, want, offset + done);
      if (bytesRead === 0) {
        throw new EndOfFileError(this.name, offset, length, done);
      }
      done += bytesRead;
    }
  }

  private async readOnce(target: Uint8Array, at: number, length: number, position: number): Promise<number> {
    if (this.mode.next() === "pool") {
      try {
        return (await this.handle.read(target, at, length, position)).bytesRead;
      } catch (cause) {
        throw this.readError(length, position, cause);
      }
    }
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
