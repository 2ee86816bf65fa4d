"""A naive per-token float64 numpy Mixtral (transformers semantics) against the built-in HfBuiltin.

Usage: naive_mixtral.py HF_DIR VERIFIER_PYTHON_DIR TOKENS_JSON; prints {"naive": loss, "builtin": loss}.
"""
import json, struct, sys
import numpy as np
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[2])
hf, tokens = sys.argv[1], json.loads(sys.argv[3])

# Weights through numpy (no torch, no shared reader): bf16 -> f32 by shifting the 16 bits up.
cfg = json.load(open(f"{hf}/config.json"))
W = {}
for shard in sorted(set(json.load(open(f"{hf}/model.safetensors.index.json"))["weight_map"].values())):
    raw = open(f"{hf}/{shard}", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    for name, e in json.loads(raw[8 : 8 + n]).items():
        if name == "__metadata__": continue
        a, b = e["data_offsets"]
        u16 = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype="<u2").astype(np.uint32) << 16
        W[name] = u16.view(np.float32).astype(np.float64).reshape(e["shape"])

H, nh, nkv, hd, E, K = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"], cfg["num_local_experts"], cfg["num_experts_per_tok"]
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

losses = []
for row in tokens:
    S = len(row)
    h = [W["model.embed_tokens.weight"][t].copy() for t in row]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        x = [norm(v, W[p + "input_layernorm.weight"]) for v in h]
        q = [[rope((W[p + "self_attn.q_proj.weight"] @ xi)[j * hd : (j + 1) * hd], i) for j in range(nh)] for i, xi in enumerate(x)]
        k = [[rope((W[p + "self_attn.k_proj.weight"] @ xi)[j * hd : (j + 1) * hd], i) for j in range(nkv)] for i, xi in enumerate(x)]
        v = [[(W[p + "self_attn.v_proj.weight"] @ xi)[j * hd : (j + 1) * hd] for j in range(nkv)] for xi in x]
        for i in range(S):
            heads = []
            for j in range(nh):
                g = j // (nh // nkv)
                sc = np.array([q[i][j] @ k[t][g] / np.sqrt(hd) for t in range(i + 1)])
                pr = np.exp(sc - sc.max()); pr /= pr.sum()
                heads.append(sum(pr[t] * v[t][g] for t in range(i + 1)))
            h[i] = h[i] + W[p + "self_attn.o_proj.weight"] @ np.concatenate(heads)
        for i in range(S):
            y = norm(h[i], W[p + "post_attention_layernorm.weight"])
            logit = W[p + "block_sparse_moe.gate.weight"] @ y
            pr = np.exp(logit - logit.max()); pr /= pr.sum()
            top = sorted(range(E), key=lambda e: -pr[e])[:K]
            out = np.zeros(H)
            for e in top:
                f = p + f"block_sparse_moe.experts.{e}."
                out += pr[e] / sum(pr[t] for t in top) * (W[f + "w2.weight"] @ (silu(W[f + "w1.weight"] @ y) * (W[f + "w3.weight"] @ y)))
            h[i] = h[i] + out
    for i in range(S - 1):
        z = W["lm_head.weight"] @ norm(h[i], W["model.norm.weight"])
        losses.append(np.log(np.exp(z - z.max()).sum()) + z.max() - z[row[i + 1]])
naive = float(np.mean(losses))

import torch
from hf_folder import HfFolder
from hf_builtin import HfBuiltin
ids = torch.tensor(tokens)
with torch.no_grad():
    logits = HfBuiltin(HfFolder(hf), torch.device("cpu"), torch.float32).run(ids, lambda n, t: None)
    builtin = float(torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1)))
print(json.dumps({"naive": naive, "builtin": builtin}))
