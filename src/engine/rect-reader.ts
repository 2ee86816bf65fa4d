import type { ByteSource } from "../formats/io/byte-source.js";
import type { MatrixView, Rect } from "../mapping/rect.js";

/** Largest span read at once when gathering a column block out of wider rows. */
const GATHER_SPAN_BYTES = 16 << 20;

/**
 * Reads a rectangle of a row-major matrix stored contiguously at `dataOffset`. Full-width
 * rectangles are one positional read; narrower ones read bands of rows and copy out the columns
 * as block copies (one per row), never element by element.
 */
export async function readMatrixRect(
  source: ByteSource,
  dataOffset: number,
  view: MatrixView,
  itemSize: number,
  rect: Rect,
  into?: Uint8Array,
): Promise<Uint8Array> {
  const rowBytes = view.cols * itemSize;
  const start = dataOffset + rect.row * rowBytes;
  const length = rect.rows * rect.cols * itemSize;
  const target = into !== undefined && into.byteLength >= length ? into.subarray(0, length) : undefined;
  if (rect.col === 0 && rect.cols === view.cols) {
    if (target !== undefined && source.readInto !== undefined) {
      await source.readInto(target, start);
      return target;
    }
    return source.read(start, length);
  }
  const outRow = rect.cols * itemSize;
  const colOffset = rect.col * itemSize;
  const out = target ?? new Uint8Array(length);
  const band = Math.max(1, Math.floor(GATHER_SPAN_BYTES / rowBytes));
  for (let r = 0; r < rect.rows; r += band) {
    const rows = Math.min(band, rect.rows - r);
    const span = (rows - 1) * rowBytes + colOffset + outRow;
    const scratch = takeScratch(span, source);
    try {
      const bytes = await readSpan(source, start + r * rowBytes, span, scratch);
      // Move each row's columns to the front of the span, in place (copyWithin allocates nothing;
      // a subarray per row was a quarter of verify's allocations): row i's piece lands at
      // i * outRow, before any later row's piece starts, since outRow <= rowBytes.
      for (let i = 0; i < rows; i++) {
        const from = i * rowBytes + colOffset;
        bytes.copyWithin(i * outRow, from, from + outRow);
      }
      out.set(bytes.subarray(0, rows * outRow), r * outRow);
    } finally {
      if (scratch !== undefined) {
        scratchPool.push(scratch);
      }
    }
  }
  return out;
}

/**
 * Spans read only to copy columns out of them go through a few reused buffers (a fresh one per
 * band cost more in page faults and GC than the read itself). A buffer is taken for one band
 * and given back, so concurrent reads never share one.
 */
const scratchPool: Uint8Array[] = [];

function takeScratch(span: number, source: ByteSource): Uint8Array | undefined {
  if (span > GATHER_SPAN_BYTES || source.readInto === undefined) {
    return undefined;
  }
  return scratchPool.pop() ?? new Uint8Array(GATHER_SPAN_BYTES);
}

async function readSpan(source: ByteSource, offset: number, span: number, scratch: Uint8Array | undefined): Promise<Uint8Array> {
  if (scratch === undefined || source.readInto === undefined) {
    return source.read(offset, span);
  }
  const target = scratch.subarray(0, span);
  await source.readInto(target, offset);
  return target;
}
