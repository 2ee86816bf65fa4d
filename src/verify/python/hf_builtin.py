"""A built-in streaming PyTorch decoder that follows transformers' Llama, Mistral, Mixtral, Qwen2-MoE and
Qwen3-MoE models (eager attention) step by step, steered by the feature dict of hf_config.py.

It streams: each tensor is read from the safetensors shards just before it is used and dropped
after, experts one at a time (one expert's slice of a fused tensor), so at most one layer's
attention weights or one expert are in memory. Semantics copied from transformers
(models/{llama,mistral,mixtral,qwen2_moe,qwen3_moe}/modeling_*.py, 4.4x-5.x):
- RMSNorm (LlamaRMSNorm and its copies): upcast to fp32, x * rsqrt(mean(x^2) + eps), cast back to the
  input dtype, then weight * x.
- Rotary: inv_freq = 1 / theta^(arange(0, d, 2) / d) in fp32, emb = cat(freqs, freqs), cos/sin cast to
  the activation dtype, q * cos + rotate_half(q) * sin with rotate_half(x) = cat(-x2, x1).
- Attention: q/k/v_proj through F.linear, with their biases when `qkv_bias` (Qwen2-MoE always);
  with `qk_norm` (Qwen3MoeAttention) q_norm / k_norm, RMSNorm over head_dim of q.view(b, s, nh, hd) and
  k.view(b, s, nkv, hd), before rotary; head_dim from config (may differ from hidden / heads).
  GQA through repeat_kv (query head i reads kv head i // n_rep), scores * head_dim^-0.5, causal mask
  with the dtype's minimum, softmax in fp32 then cast back, o_proj (with its bias when `o_bias`).
- Dense MLP (LlamaMLP, MistralMLP, Qwen*MoeMLP): down_proj(silu(gate_proj(x)) * up_proj(x)).
- Sparse MoE block (MixtralSparseMoeBlock, Qwen2MoeSparseMoeBlock, Qwen3MoeSparseMoeBlock): router
  logits = gate(x); softmax over all experts in fp32; top-k; divided by the sum of the k when
  `norm_topk` (Mixtral always, Qwen norm_topk_prob); cast to the activation dtype; each expert
  down(silu(gate x) * up x) scaled by its weight, accumulated with index_add_. Qwen2-MoE then adds
  sigmoid(shared_expert_gate(x)) * shared_expert(x).
- Final RMSNorm, lm_head (embed_tokens when tie_word_embeddings and no lm_head.weight), logits in fp32.
"""

import torch
import torch.nn.functional as F


def rms_norm(x, weight, eps):
    dtype = x.dtype
    h = x.to(torch.float32)
    var = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(var + eps)
    return weight * h.to(dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def rotary_cos_sin(seq, dim, theta, device, dtype):
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).to(device=device, dtype=torch.float32) / dim))
    pos = torch.arange(seq, device=device, dtype=torch.float32)
    freqs = torch.outer(pos, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def repeat_kv(x, n_rep):
    b, kv, s, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, kv, n_rep, s, d).reshape(b, kv * n_rep, s, d)


class HfBuiltin:
    name = "builtin"

    def __init__(self, folder, device, dtype):
        self.f = folder
        self.c = folder.config
        self.features = self.c["features"]
        self.device = device
        self.dtype = dtype

    def w(self, name, index=None):
        return self.f.tensor(name, index).to(device=self.device, dtype=self.dtype)

    def linear(self, x, name, bias):
        """F.linear with `name`.weight, and `name`.bias when the feature says the module has one."""
        return F.linear(x, self.w(name + ".weight"), self.w(name + ".bias") if bias else None)

    def attention(self, x, i, cos, sin):
        c, feat = self.c, self.features
        b, s, _ = x.shape
        p = f"model.layers.{i}.self_attn."
        hd, nh, nkv = c["head_dim"], c["heads"], c["kv_heads"]
        q = self.linear(x, p + "q_proj", feat["qkv_bias"]).view(b, s, nh, hd)
        k = self.linear(x, p + "k_proj", feat["qkv_bias"]).view(b, s, nkv, hd)
        v = self.linear(x, p + "v_proj", feat["qkv_bias"]).view(b, s, nkv, hd).transpose(1, 2)
        if feat["qk_norm"]:
            q = rms_norm(q, self.w(p + "q_norm.weight"), c["eps"])
            k = rms_norm(k, self.w(p + "k_norm.weight"), c["eps"])
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = repeat_kv(k, nh // nkv)
        v = repeat_kv(v, nh // nkv)
        scores = torch.matmul(q, k.transpose(2, 3)) * hd**-0.5
        mask = torch.full((s, s), torch.finfo(scores.dtype).min, device=x.device, dtype=scores.dtype).triu(1)
        probs = F.softmax(scores + mask, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(probs, v).transpose(1, 2).contiguous().reshape(b, s, nh * hd)
        return self.linear(out, p + "o_proj", feat["o_bias"])

    def swiglu(self, x, prefix):
        """down_proj(silu(gate_proj(x)) * up_proj(x)) of a dense MLP or Qwen2-MoE's shared expert."""
        gate, up, down = (self.w(f"{prefix}{n}_proj.weight") for n in ("gate", "up", "down"))
        return F.linear(F.silu(F.linear(x, gate)) * F.linear(x, up), down)

    def expert(self, i, e):
        """(gate, down, up) weights of one expert, read when it runs (per-expert or transformers-5 fused layout)."""
        if self.f.fused:
            gate, up = torch.chunk(self.w(f"model.layers.{i}.mlp.experts.gate_up_proj", e), 2, dim=0)
            return gate, self.w(f"model.layers.{i}.mlp.experts.down_proj", e), up
        if self.features["expert_names"] == "mixtral":
            p = f"model.layers.{i}.block_sparse_moe.experts.{e}."
            return tuple(self.w(f"{p}{n}.weight") for n in ("w1", "w2", "w3"))
        p = f"model.layers.{i}.mlp.experts.{e}."
        return tuple(self.w(f"{p}{n}_proj.weight") for n in ("gate", "down", "up"))

    def router_name(self, i):
        mixtral = self.features["expert_names"] == "mixtral" and not self.f.fused
        return f"model.layers.{i}.block_sparse_moe.gate.weight" if mixtral else f"model.layers.{i}.mlp.gate.weight"

    def moe(self, x, i):
        c, feat = self.c, self.features
        b, s, h = x.shape
        x = x.view(-1, h)
        logits = F.linear(x, self.w(self.router_name(i)))
        weights = F.softmax(logits, dim=1, dtype=torch.float)
        weights, selected = torch.topk(weights, c["topk"], dim=-1)
        if feat["norm_topk"]:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        weights = weights.to(x.dtype)
        out = torch.zeros_like(x)
        mask = F.one_hot(selected, num_classes=c["experts"]).permute(2, 1, 0)
        for e in range(c["experts"]):
            idx, top = torch.where(mask[e])
            if top.numel() == 0:
                continue
            w1, w2, w3 = self.expert(i, e)
            cur = x[top]
            y = F.linear(F.silu(F.linear(cur, w1)) * F.linear(cur, w3), w2) * weights[top, idx, None]
            out.index_add_(0, top, y.to(x.dtype))
        if feat["shared_expert"]:
            p = f"model.layers.{i}.mlp."
            shared = self.swiglu(x, p + "shared_expert.")
            out = out + torch.sigmoid(F.linear(x, self.w(p + "shared_expert_gate.weight"))) * shared
        return out.view(b, s, h)

    def mlp(self, x, i):
        return self.moe(x, i) if self.features["sparse_layers"][i] else self.swiglu(x, f"model.layers.{i}.mlp.")

    def run(self, ids, keep):
        """Returns the logits (fp32, [B, S, V]); `keep(stage_name, tensor)` receives each stage's output."""
        c = self.c
        ids = ids.to(self.device)
        h = F.embedding(ids, self.w("model.embed_tokens.weight"))
        keep("embedding", h)
        cos, sin = rotary_cos_sin(ids.shape[1], c["head_dim"], c["rope_theta"], self.device, self.dtype)
        for i in range(c["layers"]):
            eps = c["eps"]
            a = rms_norm(h, self.w(f"model.layers.{i}.input_layernorm.weight"), eps)
            h = h + self.attention(a, i, cos, sin)
            m = rms_norm(h, self.w(f"model.layers.{i}.post_attention_layernorm.weight"), eps)
            h = h + self.mlp(m, i)
            keep(f"layer {i}", h)
        h = rms_norm(h, self.w("model.norm.weight"), c["eps"])
        keep("final_norm", h)
        head = "model.embed_tokens.weight" if c["tie"] and not self.f.has("lm_head.weight") else "lm_head.weight"
        logits = F.linear(h, self.w(head)).float()
        return logits[..., : c["vocab"]]
