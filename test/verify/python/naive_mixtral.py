"""A naive per-token float64 numpy decoder (transformers semantics) against the built-in HfBuiltin.

The family comes from config.json's model_type; written from the transformers modeling files
(models/{mixtral,llama,mistral,qwen2_moe,qwen3_moe}), sharing no code with the verifier:
Mixtral's renormalised top-k; Llama/Mistral's dense SwiGLU MLP and tied embeddings (no lm_head.weight);
Qwen2-MoE's q/k/v biases, softmax then top-k without renormalisation (norm_topk_prob false) and shared
expert scaled by sigmoid(shared_expert_gate x); Qwen3-MoE's per-head q_norm/k_norm before rotary.

Usage: naive_mixtral.py HF_DIR VERIFIER_PYTHON_DIR TOKENS_JSON [BUILTIN_HF_DIR]; prints {"naive": loss, "builtin": loss}.
BUILTIN_HF_DIR (default HF_DIR) is the folder the built-in reads, e.g. the fused layout of the same weights.
"""
import json, struct, sys
import numpy as np
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[2])
hf, tokens = sys.argv[1], json.loads(sys.argv[3])
builtin_hf = sys.argv[4] if len(sys.argv) > 4 else hf

# Weights through numpy (no torch, no shared reader): bf16 -> f32 by shifting the 16 bits up.
cfg = json.load(open(f"{hf}/config.json"))
W = {}
for shard in sorted(set(json.load(open(f"{hf}/model.safetensors.index.json"))["weight_map"].values())):
    raw = open(f"{hf}/{shard}", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    for name, e in json.loads(raw[8 : 8 + n]).items():
        if name == "__metadata__": continue
        a, b = e["data_offsets"]
        data = raw[8 + n + a : 8 + n + b]
        f32 = np.frombuffer(data, dtype="<f4") if e["dtype"] == "F32" else (np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        W[name] = f32.astype(np.float64).reshape(e["shape"])

mt = cfg["model_type"]
H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
nkv, hd = cfg.get("num_key_value_heads", nh), cfg.get("head_dim") or H // nh
E, K = cfg.get("num_local_experts") or cfg.get("num_experts") or 0, cfg.get("num_experts_per_tok", 0)
qkv_bias = mt == "qwen2_moe" or bool(cfg.get("attention_bias"))
def sparse(l):
    if mt == "mixtral": return True
    if mt not in ("qwen2_moe", "qwen3_moe"): return False
    return l not in (cfg.get("mlp_only_layers") or []) and E > 0 and (l + 1) % cfg.get("decoder_sparse_step", 1) == 0
def norm(x, w): return w * x / np.sqrt((x * x).mean() + cfg["rms_norm_eps"])
def rope(v, pos):
    out = np.empty_like(v)
    for i in range(hd // 2):
        ang = pos / cfg["rope_theta"] ** (2 * i / hd)
        c, s = np.cos(ang), np.sin(ang)
        out[i] = v[i] * c - v[i + hd // 2] * s
        out[i + hd // 2] = v[i + hd // 2] * c + v[i] * s
    return out
def silu(x): return x / (1 + np.exp(-x))
def proj(p, x): return W[p + ".weight"] @ x + (W[p + ".bias"] if qkv_bias else 0)
def heads(p, x, count, pos, qk):
    y = proj(p, x)
    out = [y[j * hd : (j + 1) * hd] for j in range(count)]
    if mt == "qwen3_moe" and qk: out = [norm(v, W[p.replace("_proj", "_norm") + ".weight"]) for v in out]
    return [rope(v, pos) for v in out] if qk else out
def swiglu(p, y, gate="gate_proj", up="up_proj", down="down_proj"):
    return W[f"{p}{down}.weight"] @ (silu(W[f"{p}{gate}.weight"] @ y) * (W[f"{p}{up}.weight"] @ y))
def moe(p, y):
    m = p + ("block_sparse_moe." if mt == "mixtral" else "mlp.")
    logit = W[m + "gate.weight"] @ y
    pr = np.exp(logit - logit.max()); pr /= pr.sum()
    top = sorted(range(E), key=lambda e: -pr[e])[:K]
    scale = sum(pr[t] for t in top) if mt == "mixtral" or cfg.get("norm_topk_prob", False) else 1.0
    out = np.zeros(H)
    for e in top:
        names = ("w1", "w3", "w2") if mt == "mixtral" else ("gate_proj", "up_proj", "down_proj")
        out += pr[e] / scale * swiglu(f"{m}experts.{e}.", y, *names)
    if mt == "qwen2_moe":
        out += 1 / (1 + np.exp(-(W[m + "shared_expert_gate.weight"] @ y)[0])) * swiglu(m + "shared_expert.", y)
    return out

losses = []
for row in tokens:
    S = len(row)
    h = [W["model.embed_tokens.weight"][t].copy() for t in row]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        x = [norm(v, W[p + "input_layernorm.weight"]) for v in h]
        q = [heads(p + "self_attn.q_proj", xi, nh, i, True) for i, xi in enumerate(x)]
        k = [heads(p + "self_attn.k_proj", xi, nkv, i, True) for i, xi in enumerate(x)]
        v = [heads(p + "self_attn.v_proj", xi, nkv, i, False) for i, xi in enumerate(x)]
        for i in range(S):
            outs = []
            for j in range(nh):
                g = j // (nh // nkv)
                sc = np.array([q[i][j] @ k[t][g] / np.sqrt(hd) for t in range(i + 1)])
                pr = np.exp(sc - sc.max()); pr /= pr.sum()
                outs.append(sum(pr[t] * v[t][g] for t in range(i + 1)))
            h[i] = h[i] + W[p + "self_attn.o_proj.weight"] @ np.concatenate(outs)
        for i in range(S):
            y = norm(h[i], W[p + "post_attention_layernorm.weight"])
            h[i] = h[i] + (moe(p, y) if sparse(l) else swiglu(p + "mlp.", y))
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    for i in range(S - 1):
        z = head @ norm(h[i], W["model.norm.weight"])
        losses.append(np.log(np.exp(z - z.max()).sum()) + z.max() - z[row[i + 1]])
naive = float(np.mean(losses))

import torch
from hf_folder import HfFolder
from hf_builtin import HfBuiltin
ids = torch.tensor(tokens)
with torch.no_grad():
    logits = HfBuiltin(HfFolder(builtin_hf), torch.device("cpu"), torch.float32).run(ids, lambda n, t: None)
    builtin = float(torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1)))
print(json.dumps({"naive": naive, "builtin": builtin}))
