import { rowsRect, viewOf, type Segment } from "../rect.js";
import type { TensorSpec } from "../../model/tensor.js";
import type { ShardPiece } from "./tp-split.js";

export interface QkvDims {
  readonly heads: number;
  readonly kvGroups: number;
  readonly headDim: number;
}

/**
 * Fused QKV with GQA (megatron-layout 4a): for each query group g, the q rows of its heads,
 * then its k rows, then its v rows; TP rank t holds the groups [t*ng/TP, (t+1)*ng/TP).
 */
export function qkv(q: TensorSpec, k: TensorSpec, v: TensorSpec, dims: QkvDims, tp: number, rank: number): ShardPiece {
  const view = viewOf(q.shape);
  const perGroupQ = (dims.heads / dims.kvGroups) * dims.headDim;
  const groupsPerRank = dims.kvGroups / tp;
  const rowsPerGroup = perGroupQ + 2 * dims.headDim;
  const segments: Segment[] = [];
  for (let i = 0; i < groupsPerRank; i++) {
    const g = rank * groupsPerRank + i;
    const base = i * rowsPerGroup;
    segments.push(
      { source: q.name, src: rowsRect(view, g * perGroupQ, perGroupQ), dst: rowsRect(view, base, perGroupQ), transposed: false },
      { source: k.name, src: rowsRect(view, g * dims.headDim, dims.headDim), dst: rowsRect(view, base + perGroupQ, dims.headDim), transposed: false },
      { source: v.name, src: rowsRect(view, g * dims.headDim, dims.headDim), dst: rowsRect(view, base + perGroupQ + dims.headDim, dims.headDim), transposed: false },
    );
  }
  return { shape: [groupsPerRank * rowsPerGroup, ...q.shape.slice(1)], segments };
}
