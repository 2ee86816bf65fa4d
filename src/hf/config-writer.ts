import type { ModelDims } from "../model/model-dims.js";
import type { Dtype } from "../model/tensor.js";

const TORCH_DTYPE: Readonly<Partial<Record<Dtype, string>>> = { BF16: "bfloat16", F16: "float16", F32: "float32", F64: "float64" };

/**
 * config.json for a model rebuilt from Megatron: the table's fixed fields, then each dim under
 * the first config key the table lists for it (transformers 4.x names), then torch_dtype.
 */
export function hfConfigOf(
  fixed: Readonly<Record<string, unknown>>,
  keys: Readonly<Record<string, readonly string[]>>,
  dims: ModelDims,
  dtype: Dtype,
): Record<string, unknown> {
  const config: Record<string, unknown> = { ...fixed };
  const named = dims as unknown as Record<string, unknown>;
  for (const [dim, names] of Object.entries(keys)) {
    const key = names[0];
    if (key === undefined || key.includes(".") || named[dim] === undefined) {
      continue;
    }
    config[key] = named[dim];
  }
  config["torch_dtype"] = TORCH_DTYPE[dtype] ?? "bfloat16";
  return Object.fromEntries(Object.entries(config).sort(([a], [b]) => a.localeCompare(b)));
}

/** A user-given config.json, carried over with the output dtype set. */
export function patchedHfConfig(config: Readonly<Record<string, unknown>>, dtype: Dtype): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  if ("dtype" in out && !("torch_dtype" in out)) {
    out["dtype"] = TORCH_DTYPE[dtype] ?? out["dtype"];
  } else {
    out["torch_dtype"] = TORCH_DTYPE[dtype] ?? out["torch_dtype"];
  }
  return out;
}

/** Files beside config.json that a user of the HF model needs and that we copy when present. */
export const TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "tokenizer.model",
  "special_tokens_map.json",
  "added_tokens.json",
  "generation_config.json",
  "vocab.json",
  "merges.txt",
];
