import type { MatrixView, Segment } from "../mapping/rect.js";

/** Which HF tensor (and where in it) the element at `element` of a planned tensor comes from. */
export function locateElement(element: number, view: MatrixView, segments: readonly Segment[]): string {
  const row = Math.floor(element / view.cols);
  const col = element % view.cols;
  for (const s of segments) {
    const rows = s.dst.rows;
    if (row < s.dst.row || row >= s.dst.row + rows || col < s.dst.col || col >= s.dst.col + s.dst.cols) {
      continue;
    }
    const dr = row - s.dst.row;
    const dc = col - s.dst.col;
    if (s.repeat !== undefined) {
      return `vocab padding row ${row} (a copy of ${s.source} row ${s.src.row})`;
    }
    const [sr, sc] = s.transposed ? [s.src.row + dc, s.src.col + dr] : [s.src.row + dr, s.src.col + dc];
    return `${s.source} [${sr}, ${sc}]${s.transposed ? " (stored transposed)" : ""}`;
  }
  return "no source (outside every segment)";
}

/** The report's words for a differing element of a planned tensor: where it is, and where it comes from. */
export function differingElement(element: number, view: MatrixView, segments: readonly Segment[]): string {
  const { cols } = view;
  return `bytes differ from element ${element} on (row ${Math.floor(element / cols)}, col ${element % cols}); that element comes from ${locateElement(element, view, segments)}`;
}
