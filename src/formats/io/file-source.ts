import { open, type FileHandle } from "node:fs/promises";
import type { ByteSource } from "./byte-source.js";
import { EndOfFileError, FileAccessError } from "./errors.js";

/** One Linux read(2) returns at most 0x7ffff000 bytes; stay well below. */
const MAX_READ_CHUNK = 1 << 30;

/** A read-only FileHandle kept open for the whole run, read by position. */
export class FileSource implements ByteSource {
  private constructor(
    readonly name: string,
    readonly size: number,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string): Promise<FileSource> {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (cause) {
      throw new FileAccessError(path, "open for reading", cause);
    }
    const stat = await handle.stat();
    return new FileSource(path, stat.size, handle);
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
      const { bytesRead } = await this.handle.read(target, done, want, offset + done);
      if (bytesRead === 0) {
        throw new EndOfFileError(this.name, offset, length, done);
      }
      done += bytesRead;
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
