import { PyFloat } from "../formats/torch/pickle/values.js";
import { parseModelConfig } from "../hf/model-config.js";
import type { DetectedTarget } from "../megatron/detect.js";
import { MegatronCheckpointError } from "../megatron/errors.js";
import type { MappingTable } from "../mapping/table.js";
import type { ModelDims } from "../model/model-dims.js";

/**
 * Model dims from the checkpoint's args; the true (unpadded) vocab comes from the HF config,
 * the manifest megatron-convert wrote, or --vocab-size. An HF config that disagrees with the
 * args is an error naming both values.
 */
export function buildMcoreDims(
  detected: DetectedTarget,
  hfConfig: Record<string, unknown> | undefined,
  table: MappingTable,
  manifest: Record<string, unknown> | undefined,
  vocabSize: number | undefined,
  where: string,
): ModelDims {
  const args = detected.args;
  const num = (key: string): number | undefined => {
    const v = args?.get(key);
    return typeof v === "number" ? v : v instanceof PyFloat ? v.value : undefined;
  };
  const problems: string[] = [];
  const need = (key: string): number => {
    const v = num(key);
    if (v === undefined) {
      problems.push(`args.${key} is missing`);
    }
    return v ?? 0;
  };
  const heads = need("num_attention_heads");
  const hidden = need("hidden_size");
  const fromArgs: Omit<ModelDims, "vocab"> = {
    layers: need("num_layers"),
    hidden,
    heads,
    kvGroups: num("num_query_groups") ?? heads,
    headDim: num("kv_channels") ?? hidden / Math.max(1, heads),
    ffn: num("moe_ffn_hidden_size") ?? need("ffn_hidden_size"),
    experts: num("num_experts") ?? 0,
    topk: num("moe_router_topk") ?? 0,
    sharedFfn: num("moe_shared_expert_intermediate_size") ?? 0,
    normTopk: args?.get("moe_router_pre_softmax") !== true,
    normEps: num("norm_epsilon") ?? 1e-5,
    ropeTheta: num("rotary_base") ?? 10000,
    maxPositions: num("max_position_embeddings") ?? 4096,
    tieEmbeddings: args?.get("untie_embeddings_and_output_weights") === false,
    dtype: detected.dtype ?? "BF16",
  };
  const manifestModel = manifest?.["model"] as Record<string, unknown> | undefined;
  let vocab = vocabSize ?? (typeof manifestModel?.["vocab"] === "number" ? manifestModel["vocab"] : undefined);
  if (hfConfig !== undefined) {
    const hf = parseModelConfig(hfConfig, "--hf-config", table);
    const compared = ["layers", "hidden", "heads", "kvGroups", "headDim", "ffn", "experts", "sharedFfn", "tieEmbeddings", "normTopk"] as const;
    for (const key of compared) {
      if (hf[key] !== fromArgs[key] && (key !== "normTopk" || fromArgs.experts > 0)) {
        problems.push(`the HF config says ${key}=${hf[key]} but the checkpoint's args say ${fromArgs[key]}`);
      }
    }
    vocab = vocabSize ?? hf.vocab;
  }
  if (vocab === undefined) {
    problems.push("the true vocab size is unknown (args hold only the padded one): pass --hf-config <config.json> or --vocab-size <n>");
  }
  if (problems.length > 0) {
    throw new MegatronCheckpointError(where, problems);
  }
  return { ...fromArgs, vocab: vocab ?? 0 };
}
