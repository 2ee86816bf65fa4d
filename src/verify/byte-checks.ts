import type { PlannedTensor } from "../mapping/plan.js";
import type { Rect, Segment } from "../mapping/rect.js";
import { dtypeBytes } from "../model/tensor.js";

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
  /** The rank file, and how the report names it. */
  readonly path: string;
  readonly label: string;
  /** Its model entry (`model`, or `model0`.. with a virtual pipeline) and the report's key for it. */
  readonly model: string;
  readonly key: string;
  /** Byte offset of its data in the file; undefined when it is not stored contiguously. */
  readonly offset: number | undefined;
  readonly tensor: PlannedTensor;
}

/** One rectangle of a stored tensor (at `offset` in its file) that holds one rectangle of an HF tensor (`segment`). */
export interface StoredPiece {
  readonly stored: StoredBytes;
  readonly offset: number;
  readonly segment: Segment;
}

/** HF rows [first, end). */
export interface RowWindow {
  readonly first: number;
  readonly end: number;
}

/**
 * Stored pieces cut from one HF tensor, checked in one pass over its rows `rows`: all the rows
 * its pieces come from, or, for a large tensor, a window of them (see MAX_CHECK_BYTES).
 */
export interface SourceCheck {
  readonly kind: "source";
  readonly source: string;
  readonly rows: RowWindow;
  readonly pieces: readonly StoredPiece[];
}

/**
 * Stored bytes above which the pieces of one HF tensor are checked in several checks, each a
 * window of its rows. Checks are the unit threads share: an output layer or embedding (in every
 * TP x EP rank file) is 5x the HF tensor's bytes, and checked whole it kept one thread busy while
 * the others had run out of checks. The windows of one tensor come one after another, so a cold
 * cache still reads the shard front to back.
 */
export const MAX_CHECK_BYTES = 32 << 20;

/**
 * Stored tensors of one rank file that are checked whole, one after another (their bytes read
 * through the torch checkpoint reader): those not stored contiguously, and those with a transposed
 * piece (legacy GroupedMLP), which no row band of an HF tensor lines up with.
 */
export interface WholeTensorCheck {
  readonly kind: "whole";
  readonly path: string;
  readonly label: string;
  readonly tensors: readonly StoredBytes[];
}

export type ByteCheck = SourceCheck | WholeTensorCheck;

/** The HF tensors whose bytes land in a planned tensor, each once. */
export function hfSourcesOf(tensor: PlannedTensor): string[] {
  return [...new Set(tensor.segments.map((s) => s.source))];
}

export interface CheckPlanOptions {
  /** Orders the HF tensors (by their place in the shards, so that a cold cache reads them in order). */
  readonly sourceOrder?: (name: string) => number;
  /** Stored bytes past which an HF tensor is checked in windows of its rows (default MAX_CHECK_BYTES). */
  readonly maxCheckBytes?: number;
}

/**
 * The byte checks that cover `stored`: SourceChecks per HF tensor (in `sourceOrder`, then in
 * order of first use; one per window of rows for a tensor with more than `maxCheckBytes` of
 * stored pieces) and a WholeTensorCheck per rank file with tensors that cannot be split.
 */
export function planByteChecks(stored: readonly StoredBytes[], options: CheckPlanOptions = {}): ByteCheck[] {
  const { sourceOrder = () => 0, maxCheckBytes = MAX_CHECK_BYTES } = options;
  const bySource = new Map<string, StoredPiece[]>();
  const whole = new Map<string, { kind: "whole"; path: string; label: string; tensors: StoredBytes[] }>();
  for (const s of stored) {
    if (s.offset === undefined || !splittable(s.tensor)) {
      const file = whole.get(s.path) ?? { kind: "whole", path: s.path, label: s.label, tensors: [] };
      file.tensors.push(s);
      whole.set(s.path, file);
      continue;
    }
    for (const segment of s.tensor.segments) {
      const pieces = bySource.get(segment.source) ?? [];
      pieces.push({ stored: s, offset: s.offset, segment });
      bySource.set(segment.source, pieces);
    }
  }
  const sources = [...bySource.entries()]
    .map(([source, pieces], first) => ({ source, pieces, first }))
    .sort((a, b) => sourceOrder(a.source) - sourceOrder(b.source) || a.first - b.first)
    .flatMap(({ source, pieces }) => rowWindows(source, pieces, maxCheckBytes));
  return [...sources, ...whole.values()];
}

/**
 * The checks of one HF tensor's pieces: one, or, past `maxCheckBytes` of stored bytes, one per
 * window of about that many (rows cut evenly). A window holds the pieces with rows in it; vocab
 * padding pieces (compared apart from the row bands) go with the first.
 */
function rowWindows(source: string, pieces: readonly StoredPiece[], maxCheckBytes: number): SourceCheck[] {
  const banded = pieces.filter((p) => p.segment.repeat === undefined);
  if (banded.length === 0) {
    return [{ kind: "source", source, rows: { first: 0, end: 0 }, pieces }];
  }
  const first = Math.min(...banded.map((p) => p.segment.src.row));
  const end = Math.max(...banded.map((p) => p.segment.src.row + p.segment.src.rows));
  const bytes = pieces.reduce((sum, p) => sum + p.segment.dst.rows * p.segment.dst.cols * dtypeBytes(p.stored.tensor.dtype), 0);
  const count = Math.max(1, Math.min(end - first, Math.ceil(bytes / maxCheckBytes)));
  if (count === 1) {
    return [{ kind: "source", source, rows: { first, end }, pieces }];
  }
  return Array.from({ length: count }, (_, i): SourceCheck => {
    const rows = { first: first + Math.floor(((end - first) * i) / count), end: first + Math.floor(((end - first) * (i + 1)) / count) };
    const inWindow = (p: StoredPiece): boolean =>
      p.segment.repeat === undefined ? p.segment.src.row < rows.end && rows.first < p.segment.src.row + p.segment.src.rows : i === 0;
    return { kind: "source", source, rows, pieces: pieces.filter(inWindow) };
  });
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

function overlapping(rects: readonly Rect[]): boolean {
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
