import { rowsRect, viewOf } from "../rect.js";
import type { TensorSpec } from "../../model/tensor.js";
import type { ShardPiece } from "./tp-split.js";

/**
 * SwiGLU fc1 (megatron-layout 4b): TP rank r holds [gate_r ; up_r], gate (HF w1/gate_proj)
 * first. It is not a contiguous slice of [gate; up].
 */
export function gateUp(gate: TensorSpec, up: TensorSpec, tp: number, rank: number): ShardPiece {
  const view = viewOf(gate.shape);
  const chunk = view.rows / tp;
  return {
    shape: [2 * chunk, ...gate.shape.slice(1)],
    segments: [
      { source: gate.name, src: rowsRect(view, rank * chunk, chunk), dst: rowsRect(view, 0, chunk), transposed: false },
      { source: up.name, src: rowsRect(view, rank * chunk, chunk), dst: rowsRect(view, chunk, chunk), transposed: false },
    ],
  };
}
