"""config.json of a HuggingFace Mixtral folder, as the numbers the forward check needs (no torch needed)."""

import json
import os

from verify_errors import VerifyError


def load_config(folder):
    path = os.path.join(folder, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            c = json.load(f)
    except (OSError, ValueError) as e:
        raise VerifyError("verify.hf-config", f"cannot read {path}: {e}") from e
    rope = c.get("rope_parameters") or {}
    scaling = c.get("rope_scaling")
    if scaling and scaling.get("rope_type", scaling.get("type", "default")) != "default":
        raise VerifyError("verify.hf-config", f"{path}: rope_scaling {scaling} is not supported by the forward check")
    heads = c["num_attention_heads"]
    cfg = {
        "vocab": c["vocab_size"], "hidden": c["hidden_size"], "ffn": c["intermediate_size"],
        "layers": c["num_hidden_layers"], "heads": heads, "kv_heads": c.get("num_key_value_heads", heads),
        "head_dim": c.get("head_dim") or c["hidden_size"] // heads, "experts": c["num_local_experts"],
        "topk": c["num_experts_per_tok"], "eps": c.get("rms_norm_eps", 1e-5),
        "rope_theta": rope.get("rope_theta", c.get("rope_theta", 10000.0)),
        "max_positions": c.get("max_position_embeddings", 4096), "sliding_window": c.get("sliding_window"),
        "tie": bool(c.get("tie_word_embeddings", False)), "dtype": c.get("dtype", c.get("torch_dtype")),
    }
    return cfg
