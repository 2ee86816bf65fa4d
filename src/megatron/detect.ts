import { MegatronCheckpointError } from "./errors.js";
import { PyDict, PyNamespace, TensorRef, type PyValue } from "../formats/torch/pickle/values.js";
import type { ExpertImpl, LayerSpec } from "../mapping/profiles.js";
import type { ParallelLayout } from "../model/parallel-layout.js";
import type { Dtype } from "../model/tensor.js";

/** What a rank file tells of how its checkpoint was cut. */
export interface DetectedTarget {
  readonly layout: ParallelLayout;
  readonly spec: LayerSpec;
  readonly experts: ExpertImpl;
  readonly dtype: Dtype | undefined;
  readonly args: PyDict | undefined;
}

/** Reads layout from `args` and the spec and expert implementation from the key names. */
export function detectTarget(root: PyValue, file: string): DetectedTarget {
  if (!(root instanceof PyDict)) {
    throw new MegatronCheckpointError(file, ["the file does not hold a dict (not a Megatron model_optim_rng.pt)"]);
  }
  const args = root.get("args");
  const attrs = args instanceof PyNamespace ? args.attrs : undefined;
  if (attrs === undefined) {
    throw new MegatronCheckpointError(file, ["no `args` Namespace: cannot tell the parallel layout; pass --tp/--pp/--ep"]);
  }
  const int = (key: string, fallback?: number): number | undefined => {
    const v = attrs.get(key);
    return typeof v === "number" ? v : fallback;
  };
  const tp = int("tensor_model_parallel_size", 1) ?? 1;
  const layout: ParallelLayout = {
    tp,
    pp: int("pipeline_model_parallel_size", 1) ?? 1,
    ep: int("expert_model_parallel_size", 1) ?? 1,
    etp: int("expert_tensor_parallel_size", tp) ?? tp,
    vpp: int("virtual_pipeline_model_parallel_size", 1) ?? 1,
    ppFirstLayers: int("decoder_first_pipeline_num_layers"),
    ppLastLayers: int("decoder_last_pipeline_num_layers"),
    makeVocabDivisibleBy: int("make_vocab_size_divisible_by", 128) ?? 128,
  };
  const keys = modelKeys(root);
  const spec: LayerSpec = keys.some((k) => k.endsWith("self_attention.linear_qkv.layer_norm_weight")) ? "te" : "local";
  const experts: ExpertImpl = keys.some((k) => /\.mlp\.experts\.weight[12]$/.test(k))
    ? "grouped"
    : keys.some((k) => /\.mlp\.experts\.linear_fc[12]\.weight[0-9]+$/.test(k))
      ? "te-grouped"
      : "sequential";
  return { layout, spec, experts, dtype: firstTensorDtype(root), args: attrs };
}

/** `model`, or `model0..N`, in order. */
export function modelChunks(root: PyDict): [string, PyDict][] {
  return root.entries.filter((e): e is [string, PyDict] => typeof e[0] === "string" && /^model[0-9]*$/.test(e[0]) && e[1] instanceof PyDict);
}

function modelKeys(root: PyDict): string[] {
  return modelChunks(root).flatMap(([, m]) => m.keys().filter((k): k is string => typeof k === "string"));
}

function firstTensorDtype(root: PyDict): Dtype | undefined {
  for (const [, model] of modelChunks(root)) {
    for (const [, value] of model.entries) {
      if (value instanceof TensorRef) {
        return value.dtype;
      }
    }
  }
  return undefined;
}
