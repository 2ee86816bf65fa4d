import type { ModelDims } from "../model/model-dims.js";
import type { ParallelLayout } from "../model/parallel-layout.js";
import type { Dtype } from "../model/tensor.js";

/** A plain Python value for the `args` Namespace: int, float, str, bool or None. */
export type ArgValue = number | { readonly float: number } | string | boolean | null;

export interface ArgsInput {
  readonly dims: ModelDims;
  readonly layout: ParallelLayout;
  readonly paddedVocab: number;
  readonly spec: "te" | "local";
  readonly groupedGemm: boolean;
  readonly legacyGroupedGemm: boolean;
  readonly dtype: Dtype;
  readonly iteration: number;
  /** Model-specific constants from the mapping table (normalization, swiglu, ...). */
  readonly tableArgs: Readonly<Record<string, unknown>>;
}

export const float = (value: number): { float: number } => ({ float: value });

/**
 * The `args` Namespace written into every rank file, with the values the user will train with
 * (megatron-layout 2.3): what check_checkpoint_args compares and --use-checkpoint-args loads.
 */
export function megatronArgs(input: ArgsInput): Map<string, ArgValue> {
  const { dims, layout } = input;
  const moe = dims.experts > 0;
  const args = new Map<string, ArgValue>([
    ["num_layers", dims.layers],
    ["hidden_size", dims.hidden],
    ["ffn_hidden_size", dims.ffn],
    ["num_attention_heads", dims.heads],
    ["num_query_groups", dims.kvGroups],
    ["group_query_attention", dims.kvGroups !== dims.heads],
    ["kv_channels", dims.headDim],
    ["max_position_embeddings", dims.maxPositions],
    ["seq_length", Math.min(dims.maxPositions, 4096)],
    ["rotary_base", Math.round(dims.ropeTheta)],
    ["norm_epsilon", float(dims.normEps)],
    ["untie_embeddings_and_output_weights", !dims.tieEmbeddings],
    ["padded_vocab_size", input.paddedVocab],
    ["make_vocab_size_divisible_by", layout.makeVocabDivisibleBy],
    ["tokenizer_type", "HuggingFaceTokenizer"],
  ]);
  for (const [key, value] of Object.entries(input.tableArgs)) {
    args.set(key, toArgValue(value));
  }
  if (moe) {
    args.set("num_experts", dims.experts);
    args.set("moe_ffn_hidden_size", dims.ffn);
    args.set("moe_router_topk", dims.topk);
    // softmax over all experts, then top-k without renormalising = HF norm_topk_prob false
    args.set("moe_router_pre_softmax", !dims.normTopk);
    args.set("moe_shared_expert_intermediate_size", dims.sharedFfn > 0 ? dims.sharedFfn : null);
    args.set("moe_grouped_gemm", input.groupedGemm);
    args.set("moe_use_legacy_grouped_gemm", input.legacyGroupedGemm);
  } else {
    args.set("num_experts", null);
  }
  setParallelArgs(args, input);
  return args;
}

function setParallelArgs(args: Map<string, ArgValue>, input: ArgsInput): void {
  const { layout, dims } = input;
  args.set("tensor_model_parallel_size", layout.tp);
  args.set("pipeline_model_parallel_size", layout.pp);
  args.set("expert_model_parallel_size", layout.ep);
  args.set("expert_tensor_parallel_size", layout.etp);
  args.set("virtual_pipeline_model_parallel_size", layout.vpp > 1 ? layout.vpp : null);
  args.set("num_layers_per_virtual_pipeline_stage", layout.vpp > 1 ? dims.layers / (layout.pp * layout.vpp) : null);
  args.set("decoder_first_pipeline_num_layers", layout.ppFirstLayers ?? null);
  args.set("decoder_last_pipeline_num_layers", layout.ppLastLayers ?? null);
  args.set("sequence_parallel", dims.experts > 0 && layout.tp > 1);
  args.set("transformer_impl", input.spec === "te" ? "transformer_engine" : "local");
  args.set("bf16", input.dtype === "BF16");
  args.set("fp16", input.dtype === "F16");
  args.set("ckpt_format", "torch");
  args.set("iteration", input.iteration);
  args.set("consumed_train_samples", 0);
  args.set("skipped_train_samples", 0);
  args.set("consumed_valid_samples", 0);
}

function toArgValue(value: unknown): ArgValue {
  if (typeof value === "number" && !Number.isInteger(value)) {
    return float(value);
  }
  if (typeof value === "number" || typeof value === "string" || typeof value === "boolean" || value === null) {
    return value;
  }
  throw new Error(`mapping table megatronArgs: unsupported value ${JSON.stringify(value)}`);
}
