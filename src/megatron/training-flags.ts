import type { ArgValue } from "./args.js";

/**
 * The Megatron command-line flags that must go with a checkpoint, derived from its args, so
 * that the model Megatron builds matches the tensors (and the router behaves like HF's).
 */
export function trainingFlags(args: ReadonlyMap<string, ArgValue>): string[] {
  const get = (key: string): ArgValue | undefined => args.get(key);
  const num = (key: string): string => {
    const v = get(key);
    return typeof v === "object" && v !== null ? String(v.float) : String(v);
  };
  const flags: string[] = [
    `--num-layers ${num("num_layers")}`,
    `--hidden-size ${num("hidden_size")}`,
    `--ffn-hidden-size ${num("ffn_hidden_size")}`,
    `--num-attention-heads ${num("num_attention_heads")}`,
  ];
  if (get("group_query_attention") === true) {
    flags.push("--group-query-attention", `--num-query-groups ${num("num_query_groups")}`);
  }
  flags.push(
    `--kv-channels ${num("kv_channels")}`,
    `--max-position-embeddings ${num("max_position_embeddings")}`,
    "--position-embedding-type rope",
    "--no-position-embedding",
    `--rotary-base ${num("rotary_base")}`,
    `--normalization ${String(get("normalization"))}`,
    `--norm-epsilon ${num("norm_epsilon")}`,
  );
  if (get("swiglu") === true) {
    flags.push("--swiglu");
  }
  if (get("untie_embeddings_and_output_weights") === true) {
    flags.push("--untie-embeddings-and-output-weights");
  }
  if (get("add_bias_linear") === false) {
    flags.push("--disable-bias-linear");
  }
  if (get("add_qkv_bias") === true) {
    flags.push("--add-qkv-bias");
  }
  if (get("qk_layernorm") === true) {
    flags.push("--qk-layernorm");
  }
  flags.push(`--make-vocab-size-divisible-by ${num("make_vocab_size_divisible_by")}`);
  if (typeof get("num_experts") === "number") {
    flags.push(`--num-experts ${num("num_experts")}`, `--moe-router-topk ${num("moe_router_topk")}`, `--moe-ffn-hidden-size ${num("moe_ffn_hidden_size")}`);
    if (get("moe_router_pre_softmax") === true) {
      flags.push("--moe-router-pre-softmax");
    }
    if (typeof get("moe_shared_expert_intermediate_size") === "number") {
      flags.push(`--moe-shared-expert-intermediate-size ${num("moe_shared_expert_intermediate_size")}`);
    }
    if (get("moe_shared_expert_gate") === true) {
      flags.push("--moe-shared-expert-gate");
    }
    if (get("moe_grouped_gemm") === true) {
      flags.push("--moe-grouped-gemm");
    }
    if (get("moe_use_legacy_grouped_gemm") === true) {
      flags.push("--moe-use-legacy-grouped-gemm");
    }
    flags.push("--moe-router-load-balancing-type aux_loss");
  }
  flags.push(
    `--tensor-model-parallel-size ${num("tensor_model_parallel_size")}`,
    `--pipeline-model-parallel-size ${num("pipeline_model_parallel_size")}`,
  );
  if (typeof get("num_experts") === "number") {
    flags.push(`--expert-model-parallel-size ${num("expert_model_parallel_size")}`, `--expert-tensor-parallel-size ${num("expert_tensor_parallel_size")}`);
  }
  if (typeof get("num_layers_per_virtual_pipeline_stage") === "number") {
    flags.push(`--num-layers-per-virtual-pipeline-stage ${num("num_layers_per_virtual_pipeline_stage")}`);
  }
  if (typeof get("decoder_first_pipeline_num_layers") === "number") {
    flags.push(`--decoder-first-pipeline-num-layers ${num("decoder_first_pipeline_num_layers")}`);
  }
  if (typeof get("decoder_last_pipeline_num_layers") === "number") {
    flags.push(`--decoder-last-pipeline-num-layers ${num("decoder_last_pipeline_num_layers")}`);
  }
  if (get("sequence_parallel") === true) {
    flags.push("--sequence-parallel");
  }
  flags.push(`--transformer-impl ${String(get("transformer_impl"))}`, "--ckpt-format torch");
  if (get("bf16") === true) {
    flags.push("--bf16");
  } else if (get("fp16") === true) {
    flags.push("--fp16");
  }
  flags.push("--tokenizer-type HuggingFaceTokenizer", "--tokenizer-model <your HF model folder>");
  return flags;
}
