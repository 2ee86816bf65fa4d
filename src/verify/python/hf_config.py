"""config.json of a HuggingFace folder, as the numbers and features the forward check needs (no torch needed).

The model family comes from `model_type`; everything else from the config's keys, with the defaults of
the family's transformers config class where a key is absent (configuration_<family>.py). The result
has the dimensions (vocab, hidden, layers, heads, kv_heads, head_dim, eps, rope_theta, ...) and
`features`, which is all hf_builtin.py looks at:
- sparse_layers: per layer, MoE block (True) or dense SwiGLU MLP (False). Llama / Mistral: all dense.
  Mixtral: all sparse. Qwen2-MoE / Qwen3-MoE (Qwen2MoeDecoderLayer / Qwen3MoeDecoderLayer): sparse when
  the layer is not in mlp_only_layers, num_experts > 0 and (layer + 1) % decoder_sparse_step == 0.
- expert_names: "mixtral" (block_sparse_moe.gate, experts.{e}.w1/w2/w3) or "qwen" (mlp.gate,
  mlp.experts.{e}.gate_proj/up_proj/down_proj); either may instead be the transformers-5 fused layout
  (mlp.experts.gate_up_proj / down_proj), which hf_folder.py detects from the tensor names.
- norm_topk: divide the top-k routing weights by their sum. Mixtral always; Qwen: norm_topk_prob
  (default False in both Qwen2MoeConfig and Qwen3MoeConfig).
- shared_expert: Qwen2-MoE's shared expert with its sigmoid gate (Qwen2MoeSparseMoeBlock).
- qkv_bias / o_bias: q/k/v_proj and o_proj biases. Llama: attention_bias (both); Mistral: none;
  Qwen2-MoE: q/k/v always (qkv_bias where the config has it, default True), o_proj never;
  Qwen3-MoE: attention_bias (both).
- qk_norm: Qwen3-MoE's per-head RMSNorm of q and k (q_norm / k_norm) before rotary.
"""

import json
import os

from verify_errors import VerifyError

SUPPORTED = ("llama", "mistral", "mixtral", "qwen2_moe", "qwen3_moe")
# Defaults of the transformers config classes for keys a config.json may omit.
DEFAULTS = {
    "llama": {"rms_norm_eps": 1e-6, "rope_theta": 10000.0, "num_key_value_heads": None},
    "mistral": {"rms_norm_eps": 1e-6, "rope_theta": 10000.0, "num_key_value_heads": 8},
    "mixtral": {"rms_norm_eps": 1e-5, "rope_theta": 1e6, "num_key_value_heads": 8},
    "qwen2_moe": {"rms_norm_eps": 1e-6, "rope_theta": 10000.0, "num_key_value_heads": 16},
    "qwen3_moe": {"rms_norm_eps": 1e-6, "rope_theta": 10000.0, "num_key_value_heads": 4},
}


def qwen_sparse_layers(c, layers):
    experts = c.get("num_experts", 0)
    step = c.get("decoder_sparse_step", 1)
    only = set(c.get("mlp_only_layers") or [])
    return [i not in only and experts > 0 and (i + 1) % step == 0 for i in range(layers)]


def features_of(c, family, layers, path):
    """The feature dict of one config (see the module docstring)."""
    dense = {"sparse_layers": [False] * layers, "expert_names": None, "norm_topk": False, "shared_expert": False, "qk_norm": False}
    if family in ("llama", "mistral"):
        if c.get("mlp_bias", False):
            raise VerifyError("verify.hf-config", f"{path}: mlp_bias is true; MLP biases are not supported by the forward check")
        bias = family == "llama" and bool(c.get("attention_bias", False))
        return {**dense, "qkv_bias": bias, "o_bias": bias}
    if family == "mixtral":
        return {**dense, "sparse_layers": [True] * layers, "expert_names": "mixtral", "norm_topk": True, "qkv_bias": False, "o_bias": False}
    qwen = {**dense, "sparse_layers": qwen_sparse_layers(c, layers), "expert_names": "qwen", "norm_topk": bool(c.get("norm_topk_prob", False))}
    if family == "qwen2_moe":
        return {**qwen, "shared_expert": True, "qkv_bias": bool(c.get("qkv_bias", True)), "o_bias": False}
    bias = bool(c.get("attention_bias", False))
    return {**qwen, "qk_norm": True, "qkv_bias": bias, "o_bias": bias}


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise VerifyError("verify.hf-config", f"cannot read {path}: {e}") from e


def load_config(folder):
    path = os.path.join(folder, "config.json")
    c = read_json(path)
    family = c.get("model_type")
    if family not in SUPPORTED:
        raise VerifyError("verify.hf-config", f"{path}: model_type {family!r} is not supported by the forward check", f"supported model types: {', '.join(SUPPORTED)}")
    d = DEFAULTS[family]
    rope = c.get("rope_parameters") or {}
    scaling = c.get("rope_scaling")
    if scaling and scaling.get("rope_type", scaling.get("type", "default")) != "default":
        raise VerifyError("verify.hf-config", f"{path}: rope_scaling {scaling} is not supported by the forward check")
    heads = c["num_attention_heads"]
    layers = c["num_hidden_layers"]
    features = features_of(c, family, layers, path)
    moe = any(features["sparse_layers"])
    window = c.get("sliding_window") if c.get("use_sliding_window", family in ("mistral", "mixtral")) else None
    return {
        "model_type": family, "vocab": c["vocab_size"], "hidden": c["hidden_size"], "layers": layers,
        "heads": heads, "kv_heads": c.get("num_key_value_heads") or d["num_key_value_heads"] or heads,
        "head_dim": c.get("head_dim") or c["hidden_size"] // heads,
        "ffn": c.get("intermediate_size"),
        "experts": c.get("num_local_experts", c.get("num_experts")) if moe else 0,
        "topk": c.get("num_experts_per_tok", 2) if moe else 0,
        "eps": c.get("rms_norm_eps", d["rms_norm_eps"]),
        "rope_theta": rope.get("rope_theta", c.get("rope_theta", d["rope_theta"])),
        "max_positions": c.get("max_position_embeddings", 4096), "sliding_window": window,
        "tie": bool(c.get("tie_word_embeddings", False)), "dtype": c.get("dtype", c.get("torch_dtype")),
        "features": features,
    }
