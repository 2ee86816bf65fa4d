import { describe, expect, it } from "vitest";
import { readMatrixRect } from "../../src/engine/rect-reader.js";
import type { ByteSource } from "../../src/formats/io/byte-source.js";
import type { MatrixView, Rect } from "../../src/mapping/rect.js";
import { seededBytes } from "../support/memory-space.js";

/** A file held in memory, with or without readInto (remote sources have none). */
function memorySource(bytes: Uint8Array, withReadInto: boolean): ByteSource & { reads: number } {
  const source = {
    name: "memory",
    size: bytes.byteLength,
    reads: 0,
    async read(offset: number, length: number): Promise<Uint8Array> {
      source.reads++;
      return bytes.slice(offset, offset + length);
    },
    async readInto(target: Uint8Array, offset: number): Promise<void> {
      source.reads++;
      target.set(bytes.subarray(offset, offset + target.byteLength));
    },
    async close(): Promise<void> {},
  };
  if (!withReadInto) {
    return { ...source, readInto: undefined, get reads() { return source.reads; } };
  }
  return source;
}

/** Where two byte arrays first differ (-1: equal); toEqual walks megabytes element by element. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.byteLength !== b.byteLength) {
    return Math.min(a.byteLength, b.byteLength);
  }
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)) ? -1 : a.findIndex((v, i) => v !== b[i]);
}

/** The rectangle, row by row, the obvious way. */
function naiveRect(bytes: Uint8Array, dataOffset: number, view: MatrixView, itemSize: number, rect: Rect): Uint8Array {
  const out = new Uint8Array(rect.rows * rect.cols * itemSize);
  for (let r = 0; r < rect.rows; r++) {
    const from = dataOffset + ((rect.row + r) * view.cols + rect.col) * itemSize;
    out.set(bytes.subarray(from, from + rect.cols * itemSize), r * rect.cols * itemSize);
  }
  return out;
}

describe("readMatrixRect", () => {
  // 2048 rows of 12 KiB: a column block spans 24 MiB of rows, so it is gathered in two 16 MiB bands.
  const view = { rows: 2048, cols: 3072 };
  const itemSize = 4;
  const dataOffset = 40;
  const file = seededBytes(dataOffset + view.rows * view.cols * itemSize + 8, 7);

  const rects: [string, Rect][] = [
    ["full-width rows", { row: 5, col: 0, rows: 700, cols: view.cols }],
    ["a TP column slice over every row (two bands)", { row: 0, col: 768, rows: view.rows, cols: 768 }],
    ["the last columns", { row: 3, col: 3071, rows: 1999, cols: 1 }],
    ["the first columns of a few rows", { row: 2040, col: 0, rows: 8, cols: 1000 }],
    ["all but one column", { row: 1, col: 1, rows: 1500, cols: view.cols - 1 }],
  ];
  for (const [what, rect] of rects) {
    for (const withReadInto of [true, false]) {
      it(`reads ${what} ${withReadInto ? "through reused buffers" : "from a source without readInto"}`, async () => {
        const expected = naiveRect(file, dataOffset, view, itemSize, rect);
        const source = memorySource(file, withReadInto);
        expect(firstDifference(await readMatrixRect(source, dataOffset, view, itemSize, rect), expected)).toBe(-1);
        // into a caller's buffer larger than the rectangle: the rectangle is its start
        const into = new Uint8Array(expected.byteLength + 64).fill(0xee);
        const got = await readMatrixRect(source, dataOffset, view, itemSize, rect, into);
        expect(firstDifference(got, expected)).toBe(-1);
        if (withReadInto) {
          expect(got.buffer).toBe(into.buffer);
        }
      });
    }
  }

  it("reads a column slice in bands of at most 16 MiB, one read each", async () => {
    const source = memorySource(file, true);
    await readMatrixRect(source, dataOffset, view, itemSize, { row: 0, col: 1536, rows: view.rows, cols: 768 });
    expect(source.reads).toBe(2);
  });
});
