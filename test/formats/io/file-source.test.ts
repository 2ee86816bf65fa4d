import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EndOfFileError, FileAccessError } from "../../../src/formats/io/errors.js";
import { FileSource } from "../../../src/formats/io/file-source.js";
import { makeTempDir } from "../../support/tmpdir.js";

async function fileOf(bytes: Uint8Array): Promise<string> {
  const path = join(await makeTempDir(), "data.bin");
  await writeFile(path, bytes);
  return path;
}

const pattern = Uint8Array.from({ length: 3 << 20 }, (_, i) => (i * 7 + (i >> 11)) & 0xff);

describe.each([
  ["blocking while fast", {}],
  ["thread pool only", { poolReadsOnly: true }],
])("FileSource (%s)", (_label, options) => {
  it("returns exactly the bytes at each offset, into fresh and reused buffers", async () => {
    const source = await FileSource.open(await fileOf(pattern), options);
    try {
      expect(source.size).toBe(pattern.byteLength);
      const reused = new Uint8Array(1 << 20);
      for (const [offset, length] of [[0, 1], [4095, 1 << 20], [(3 << 20) - 17, 17], [123_457, 65_537]] as const) {
        const want = Buffer.from(pattern.subarray(offset, offset + length));
        expect(want.equals(await source.read(offset, length))).toBe(true);
        const into = reused.subarray(0, length);
        await source.readInto(into, offset);
        expect(want.equals(into)).toBe(true);
      }
    } finally {
      await source.close();
    }
  });

  it("reads many ranges in one call, each into its own array, and names the file for one past its end", async () => {
    const path = await fileOf(pattern);
    const source = await FileSource.open(path, options);
    try {
      const ranges = [[0, 30], [(3 << 20) - 30, 30], [1 << 20, 1], [77, 0], [5_000, 70_001]] as const;
      const read = await source.readRanges(ranges.map(([offset, length]) => ({ offset, length })));
      expect(read.map((bytes) => Buffer.from(bytes))).toEqual(ranges.map(([offset, length]) => Buffer.from(pattern.subarray(offset, offset + length))));
      expect(new Set(read.map((bytes) => bytes.buffer)).size).toBe(ranges.length);
      const error = await source.readRanges([{ offset: 0, length: 4 }, { offset: (3 << 20) - 2, length: 4 }]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EndOfFileError);
      expect((error as Error).message).toContain(path);
    } finally {
      await source.close();
    }
  });

  /** The error of reading `length` bytes at `offset` of `path`. */
  async function readError(path: string, offset: number, length: number): Promise<Error> {
    const source = await FileSource.open(path, options);
    try {
      return (await source.read(offset, length).then(() => new Error("the read did not fail"), (e: unknown) => e)) as Error;
    } finally {
      await source.close();
    }
  }

  it("names the file when a read runs past its end", async () => {
    const path = await fileOf(pattern.subarray(0, 100));
    const error = await readError(path, 90, 20);
    expect(error).toBeInstanceOf(EndOfFileError);
    expect(error.message).toContain(path);
  });

  it("names the file when the system refuses a read", async () => {
    const dir = await makeTempDir(); // opens for reading, but read(2) fails with EISDIR
    const error = await readError(dir, 0, 1);
    expect(error).toBeInstanceOf(FileAccessError);
    expect(error.message).toContain(dir);
  });
});
