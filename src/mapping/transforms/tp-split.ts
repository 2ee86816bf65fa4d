import { colsRect, fullRect, rowsRect, viewOf, type Segment } from "../rect.js";
import type { TensorSpec } from "../../model/tensor.js";

/** One TP rank's share of a tensor: its shape and where its bytes come from. */
export interface ShardPiece {
  readonly shape: readonly number[];
  readonly segments: readonly Segment[];
}

export function replicated(input: TensorSpec): ShardPiece {
  const view = viewOf(input.shape);
  return { shape: input.shape, segments: [{ source: input.name, src: fullRect(view), dst: fullRect(view), transposed: false }] };
}

/** Column-parallel: dim 0 (output features) in TP equal chunks. */
export function column(input: TensorSpec, tp: number, rank: number): ShardPiece {
  const view = viewOf(input.shape);
  const dim0 = input.shape[0] ?? 1;
  const rowsPerDim0 = view.rows / dim0;
  const chunk = (dim0 / tp) * rowsPerDim0;
  return {
    shape: [dim0 / tp, ...input.shape.slice(1)],
    segments: [{ source: input.name, src: rowsRect(view, rank * chunk, chunk), dst: rowsRect(view, 0, chunk), transposed: false }],
  };
}

/** Row-parallel: the last dim (input features) in TP equal chunks. */
export function row(input: TensorSpec, tp: number, rank: number): ShardPiece {
  const view = viewOf(input.shape);
  const chunk = view.cols / tp;
  const shape = [...input.shape.slice(0, -1), chunk];
  return {
    shape,
    segments: [{ source: input.name, src: colsRect(view, rank * chunk, chunk), dst: colsRect(view, 0, chunk), transposed: false }],
  };
}

/**
 * Vocab-parallel: rows padded to `paddedVocab` (padding rows repeat the last real row, as
 * Megatron's own converter does: tools/checkpoint/saver_base.py pad_weight), then dim-0 chunks.
 */
export function vocab(input: TensorSpec, tp: number, rank: number, paddedVocab: number): ShardPiece {
  const view = viewOf(input.shape);
  const real = input.shape[0] ?? 0;
  const per = paddedVocab / tp;
  const start = rank * per;
  const end = start + per;
  const segments: Segment[] = [];
  const realEnd = Math.min(end, real);
  if (realEnd > start) {
    segments.push({ source: input.name, src: rowsRect(view, start, realEnd - start), dst: rowsRect(view, 0, realEnd - start), transposed: false });
  }
  const padFrom = Math.max(start, real);
  if (end > padFrom) {
    segments.push({
      source: input.name,
      src: rowsRect(view, real - 1, 1),
      dst: rowsRect(view, padFrom - start, end - padFrom),
      transposed: false,
      repeat: end - padFrom,
    });
  }
  return { shape: [per, ...input.shape.slice(1)], segments };
}
