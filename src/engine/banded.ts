import type { SourceSpace } from "./source-space.js";
import type { MatrixView, Rect, Segment } from "../mapping/rect.js";

/**
 * Builds a tensor whose untransposed segments do not cover whole rows (row-split pieces from
 * several ranks side by side, as mcore2hf and reshard meet them) band by band: each band of at
 * most `bandBytes` is filled from the parts of the segments that fall in it, so memory stays at
 * one band however large the tensor.
 */
export async function* bandedBytes(
  segments: readonly Segment[],
  view: MatrixView,
  itemSize: number,
  space: SourceSpace,
  bandBytes: number,
  take: (bytes: number) => Uint8Array | undefined,
): AsyncGenerator<Uint8Array> {
  const rowBytes = view.cols * itemSize;
  const bandRows = Math.max(1, Math.floor(bandBytes / Math.max(1, rowBytes)));
  // every piece of a band is read into this one buffer before it is copied into place
  const scratch = new Uint8Array(Math.min(bandRows, view.rows) * rowBytes);
  for (let r0 = 0; r0 < view.rows; r0 += bandRows) {
    const rows = Math.min(bandRows, view.rows - r0);
    const size = rows * rowBytes;
    const out = take(size)?.subarray(0, size) ?? new Uint8Array(size);
    for (const seg of segments) {
      const a = Math.max(r0, seg.dst.row);
      const b = Math.min(r0 + rows, seg.dst.row + seg.dst.rows);
      if (a < b) {
        await place(out, r0, a, b, seg, view, itemSize, space, scratch);
      }
    }
    yield out;
  }
}

/** Copies dst rows [a, b) of one segment into the band that starts at row r0. */
async function place(
  out: Uint8Array,
  r0: number,
  a: number,
  b: number,
  seg: Segment,
  view: MatrixView,
  itemSize: number,
  space: SourceSpace,
  scratch: Uint8Array,
): Promise<void> {
  const pieceRow = seg.dst.cols * itemSize;
  const put = (bytes: Uint8Array, srcRow: number, dstRow: number) => {
    out.set(bytes.subarray(srcRow * pieceRow, (srcRow + 1) * pieceRow), ((dstRow - r0) * view.cols + seg.dst.col) * itemSize);
  };
  if (seg.repeat !== undefined) {
    const tile = await space.readRect(seg.source, seg.src);
    for (let d = a; d < b; d++) {
      put(tile, (d - seg.dst.row) % seg.src.rows, d);
    }
    return;
  }
  const rect: Rect = { row: seg.src.row + (a - seg.dst.row), col: seg.src.col, rows: b - a, cols: seg.src.cols };
  const bytes = await space.readRect(seg.source, rect, scratch);
  for (let d = a; d < b; d++) {
    put(bytes, d - a, d);
  }
}
