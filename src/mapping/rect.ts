/**
 * Every transform is a reordering of row/column blocks. Tensors are seen as matrices
 * (`MatrixView`): rows = product of all dims but the last, cols = last dim (a 1-D tensor [n] is
 * n rows of 1 column). A Segment says: rectangle `dst` of one tensor is rectangle `src` of
 * another, possibly transposed, possibly repeated down the rows (vocab padding).
 */
export interface MatrixView {
  readonly rows: number;
  readonly cols: number;
}

export interface Rect {
  readonly row: number;
  readonly col: number;
  readonly rows: number;
  readonly cols: number;
}

export interface Segment {
  /** Name of the source tensor in the source name space. */
  readonly source: string;
  readonly src: Rect;
  readonly dst: Rect;
  /** dst = src^T (dst.rows = src.cols). */
  readonly transposed: boolean;
  /** dst = src tiled `repeat` times down the rows (padding); never used to rebuild the source. */
  readonly repeat?: number;
}

export function viewOf(shape: readonly number[]): MatrixView {
  if (shape.length === 0) {
    return { rows: 1, cols: 1 };
  }
  if (shape.length === 1) {
    return { rows: shape[0] ?? 0, cols: 1 };
  }
  const cols = shape[shape.length - 1] ?? 0;
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return { rows, cols };
}

export function fullRect(view: MatrixView): Rect {
  return { row: 0, col: 0, rows: view.rows, cols: view.cols };
}

export function rowsRect(view: MatrixView, row: number, rows: number): Rect {
  return { row, col: 0, rows, cols: view.cols };
}

export function colsRect(view: MatrixView, col: number, cols: number): Rect {
  return { row: 0, col, rows: view.rows, cols };
}

export function intersect(a: Rect, b: Rect): Rect | undefined {
  const row = Math.max(a.row, b.row);
  const col = Math.max(a.col, b.col);
  const rowEnd = Math.min(a.row + a.rows, b.row + b.rows);
  const colEnd = Math.min(a.col + a.cols, b.col + b.cols);
  if (rowEnd <= row || colEnd <= col) {
    return undefined;
  }
  return { row, col, rows: rowEnd - row, cols: colEnd - col };
}

/** Maps a sub-rectangle of `seg.src` to the rectangle it lands on in dst (no repeats). */
export function mapSrcToDst(seg: Segment, sub: Rect): Rect {
  const dr = sub.row - seg.src.row;
  const dc = sub.col - seg.src.col;
  if (seg.transposed) {
    return { row: seg.dst.row + dc, col: seg.dst.col + dr, rows: sub.cols, cols: sub.rows };
  }
  return { row: seg.dst.row + dr, col: seg.dst.col + dc, rows: sub.rows, cols: sub.cols };
}

/** The inverse of a (non-repeating) segment: src and dst swap roles. */
export function invertSegment(seg: Segment, dstTensor: string): Segment {
  return { source: dstTensor, src: seg.dst, dst: seg.src, transposed: seg.transposed };
}

/** Moves a segment's destination by (row, col) and optionally transposes it into a packed tensor. */
export function placeSegment(seg: Segment, rowOffset: number, transpose: boolean): Segment {
  if (!transpose) {
    return { ...seg, dst: { ...seg.dst, row: seg.dst.row + rowOffset } };
  }
  if (seg.repeat !== undefined) {
    throw new Error("a repeated (padding) segment cannot be transposed");
  }
  const d = seg.dst;
  return {
    source: seg.source,
    src: seg.src,
    dst: { row: rowOffset + d.col, col: d.row, rows: d.cols, cols: d.rows },
    transposed: !seg.transposed,
  };
}

export function area(rect: Rect): number {
  return rect.rows * rect.cols;
}
