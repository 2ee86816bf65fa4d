import type { Dtype } from "./tensor.js";

/** What the transforms and the layout checks need to know of a model; nothing HF-specific. */
export interface ModelDims {
  readonly layers: number;
  readonly hidden: number;
  readonly heads: number;
  /** Query groups (HF num_key_value_heads). */
  readonly kvGroups: number;
  readonly headDim: number;
  /** FFN size of one expert (or of the dense MLP). */
  readonly ffn: number;
  /** 0 for a dense model. */
  readonly experts: number;
  readonly topk: number;
  /** FFN size of the MoE layer's shared expert; 0 when there is none. */
  readonly sharedFfn: number;
  /** Top-k routing weights renormalised to sum to 1 (HF norm_topk_prob; Mixtral always). */
  readonly normTopk: boolean;
  readonly vocab: number;
  readonly normEps: number;
  readonly ropeTheta: number;
  readonly maxPositions: number;
  readonly tieEmbeddings: boolean;
  /** The checkpoint's declared dtype (config.json torch_dtype / dtype). */
  readonly dtype: Dtype;
}
