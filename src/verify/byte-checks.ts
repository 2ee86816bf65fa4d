import type { PlannedTensor } from "../mapping/plan.js";
import type { MatrixView, Segment } from "../mapping/rect.js";
import type { Dtype } from "../model/tensor.js";

/**
 * How verify reads bytes: by HF tensor, not by rank file. A rank file's tensors cut the HF
 * tensors into pieces (TP slices, EP replicas of dense weights, vocab padding), and checking rank
 * file by rank file reads an HF row once per TP rank that holds a column slice of it, and a dense
 * weight once per EP rank. Grouping every stored piece by the HF tensor it comes from lets one
 * pass over each HF tensor check all of them: every HF byte and every stored byte is read once.
 * Pure: this file plans; compare-source.ts reads.
 */

/** A stored tensor whose dtype and shape match its plan, and where its data lies. */
export interface StoredBytes {
  /** The rank file, and how the report names it and the key. */
  readonly path: string;
  readonly label: string;
  readonly key: string;
  /** Byte offset of its data in the file; undefined when it is not stored contiguously. */
  readonly offset: number | undefined;
  readonly tensor: PlannedTensor;
}

/** One rectangle of a stored tensor that holds one rectangle of an HF tensor (`segment`). */
export interface StoredPiece {
  readonly path: string;
  readonly label: string;
  readonly key: string;
  readonly offset: number;
  readonly dtype: Dtype;
  readonly view: MatrixView;
  readonly segment: Segment;
  /** All of the stored tensor's segments, to name the source of a differing element. */
  readonly segments: readonly Segment[];
}

/** Every stored piece cut from one HF tensor, checked in one pass over that tensor. */
export interface SourceCheck {
  readonly kind: "source";
  readonly source: string;
  readonly pieces: readonly StoredPiece[];
}

/**
 * Stored tensors of one rank file that are checked whole, one after another (their bytes read
 * through the torch checkpoint reader): those not stored contiguously, and those with a transposed
 * piece (legacy GroupedMLP), which no row band of an HF tensor lines up with.
 */
export interface WholeTensorCheck {
  readonly kind: "whole";
  readonly path: string;
  readonly label: string;
  readonly tensors: readonly { readonly key: string; readonly model: string; readonly tensor: PlannedTensor }[];
}

export type ByteCheck = SourceCheck | WholeTensorCheck;

/**
 * The byte checks that cover `stored`: a SourceCheck per HF tensor (in `sourceOrder`, then in
 * order of first use) and a WholeTensorCheck per rank file with tensors that cannot be split.
 */
export function planByteChecks(stored: readonly StoredBytes[], sourceOrder: (name: string) => number = () => 0): ByteCheck[] {
  const bySource = new Map<string, StoredPiece[]>();
  const whole = new Map<string, { path: string; label: string; tensors: WholeTensorCheck["tensors"][number][] }>();
  for (const s of stored) {
    if (s.offset === undefined || !splittable(s.tensor)) {
      const file = whole.get(s.path) ?? { path: s.path, label: s.label, tensors: [] };
      file.tensors.push({ key: s.key, model: s.key.slice(0, s.key.indexOf("/")), tensor: s.tensor });
      whole.set(s.path, file);
      continue;
    }
    for (const segment of s.tensor.segments) {
      const pieces = bySource.get(segment.source) ?? [];
      pieces.push({
        path: s.path,
        label: s.label,
        key: s.key,
        offset: s.offset,
        dtype: s.tensor.dtype,
        view: s.tensor.view,
        segment,
        segments: s.tensor.segments,
      });
      bySource.set(segment.source, pieces);
    }
  }
  const sources = [...bySource.entries()]
    .map(([source, pieces], first) => ({ source, pieces, first }))
    .sort((a, b) => sourceOrder(a.source) - sourceOrder(b.source) || a.first - b.first)
    .map(({ source, pieces }): SourceCheck => ({ kind: "source", source, pieces }));
  return [...sources, ...[...whole.values()].map((w): WholeTensorCheck => ({ kind: "whole", ...w }))];
}

/**
 * Whether a tensor can be checked piece by piece: no piece transposed, every piece inside the
 * tensor, and the pieces covering it exactly (their areas add up to the tensor's, and no two
 * overlap), so that checking every piece checks every byte once.
 */
export function splittable(tensor: PlannedTensor): boolean {
  const { rows, cols } = tensor.view;
  let area = 0;
  const rects = tensor.segments.map((s) => s.dst);
  for (const s of tensor.segments) {
    const d = s.dst;
    if (s.transposed || d.row < 0 || d.col < 0 || d.row + d.rows > rows || d.col + d.cols > cols) {
      return false;
    }
    const srcRows = s.repeat === undefined ? s.src.rows : s.src.rows * s.repeat;
    if (srcRows !== d.rows || s.src.cols !== d.cols) {
      return false;
    }
    area += d.rows * d.cols;
  }
  return area === rows * cols && !overlapping(rects);
}

function overlapping(rects: readonly { row: number; col: number; rows: number; cols: number }[]): boolean {
  const sorted = [...rects].sort((a, b) => a.row - b.row || a.col - b.col);
  for (const [i, a] of sorted.entries()) {
    for (const b of sorted.slice(i + 1)) {
      if (b.row >= a.row + a.rows) {
        break; // sorted by row: no later one reaches into a either
      }
      if (b.col < a.col + a.cols && a.col < b.col + b.cols) {
        return true;
      }
    }
  }
  return false;
}
