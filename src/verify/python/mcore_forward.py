"""The Megatron side of the forward check, computed from the rank files the way each rank computes.

Nothing here rebuilds an HF tensor, and nothing looks at the model's name: the modules come from the
checkpoint's args and the rank files' keys (mcore_checkpoint.py). Activations are [s, b, h] as in
Megatron-Core. For each layer:
- Data parallel: batch row r belongs to data-parallel rank r % EP, which is EP rank r % EP (the rank
  order is tp-cp-ep-dp-pp, megatron-layout 1.3); its non-expert weights (attention, norms, router,
  dense MLP, shared experts) come from the files of that EP rank, so every EP file's replica takes part.
- Vocab-parallel embedding: TP rank t looks up the ids in [t*Vp/TP, (t+1)*Vp/TP), zeroes the others,
  and the partial embeddings are summed (the all-reduce).
- Attention: each TP rank runs its column-parallel linear_qkv (adding its linear_qkv.bias when
  args.add_qkv_bias: the bias rows are interleaved per query group like the weight rows), views the
  output as [s, b, ng/TP, (nq+2)*hn], splits each query group into q (nq*hn), k (hn), v (hn); with
  args.qk_layernorm, q_layernorm over hn of q [s, b, heads, hn] and k_layernorm of k, before rotary
  (attention.py get_query_key_value_tensors); rotary (_rotate_half, emb = cat(freqs, freqs)) over
  hn = kv_channels; k/v expanded with repeat_interleave over the nq heads of a group, scores scaled by
  1/sqrt(hn), causal softmax in fp32; its row-parallel linear_proj gives a partial output; partials
  are summed over TP ranks.
- Pre-MLP norm: pre_mlp_layernorm.weight, except a dense layer of the TE spec, where it is fused into
  mlp.linear_fc1 as layer_norm_weight (gpt_layer_specs.py: TENorm only for MoE layers).
- Dense MLP (mlp.linear_fc1 present, no router; transformer/mlp.py with gated_linear_unit): each TP
  rank's fc1 output is chunked into gate and up halves ([gate_r; up_r] rows), silu(gate) * up, its
  row-parallel fc2 gives a partial sum; partials are summed over TP ranks.
- MoE layers (mlp.router present): router, routed experts and shared experts as in mcore_moe.py.
- Output layer: column-parallel over the padded vocab, concatenated, then sliced to the real vocab.
  With tied embeddings (args.untie_embeddings_and_output_weights False) and the last chunk also the
  first (PP = 1, no VPP) Megatron allocates no output_layer.weight and uses the chunk's
  embedding.word_embeddings.weight (language_module.py shared_embedding_or_output_weight); with PP > 1
  the last stage holds its own output_layer.weight copy.
"""

import math

import torch
import torch.nn.functional as F

from mcore_moe import McoreMoe
from verify_errors import VerifyError


def mcore_rms_norm(x, weight, eps):
    """torch.nn.RMSNorm / TE RMSNorm: normalise in fp32, scale by the weight, return the input dtype."""
    x32 = x.float()
    y = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + eps)
    return (y * weight.float()).to(x.dtype)


def mcore_rotate_half(x):
    x1, x2 = torch.chunk(x, 2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def mcore_rotary(seq, dim, base, device):
    """RotaryEmbedding.forward: [s, 1, 1, dim] frequencies, emb = cat(freqs, freqs)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim))
    freqs = torch.outer(torch.arange(seq, device=device, dtype=torch.float32), inv_freq)
    return torch.cat((freqs, freqs), dim=-1)[:, None, None, :]


def apply_rotary(t, freqs):
    cos, sin = freqs.cos().to(t.dtype), freqs.sin().to(t.dtype)
    return t * cos + mcore_rotate_half(t) * sin


class Layer:
    """What one layer of one chunk holds, from its keys (TP rank 0, EP rank 0) checked against the args."""

    def __init__(self, spec, input_norm, moe, pre_mlp_norm, experts_impl):
        self.spec, self.input_norm, self.moe, self.pre_mlp_norm, self.experts_impl = spec, input_norm, moe, pre_mlp_norm, experts_impl


class McoreRunner:
    def __init__(self, ckpt, vocab, device, dtype):
        self.c = ckpt
        self.vocab = vocab
        self.device = device
        self.dtype = dtype
        self.experts_impl = None
        self.spec = None
        self.unexercised = []
        self.dense_layers = 0
        self.moe_layers = 0
        self.moe = McoreMoe(self)

    def w(self, t, p, e, v, name):
        return self.c.tensor(t, p, e, v, name).to(device=self.device, dtype=self.dtype)

    def embed(self, ids, e):
        c = self.c
        per = c.padded_vocab // c.tp
        out = None
        for t in range(c.tp):
            weight = self.w(t, 0, e, 0, "embedding.word_embeddings.weight")
            if weight.shape[0] != per:
                raise VerifyError("verify.layout", f"{c.rank_dir(t, 0, e)}: embedding has {weight.shape[0]} rows; args padded_vocab_size={c.padded_vocab} / TP={c.tp} = {per}")
            start = t * per
            outside = (ids < start) | (ids >= start + per)
            part = F.embedding((ids - start).masked_fill(outside, 0), weight)
            part = part.masked_fill(outside[..., None], 0.0)
            out = part if out is None else out + part
        return out.transpose(0, 1).contiguous()

    def expect(self, p, v, name, wanted, why):
        """Megatron builds `name` exactly when the args say so; a file without it fails to load, and a
        file with an extra one fails the strict load, so both are layout errors here."""
        present = self.c.has(0, p, 0, v, name)
        if present != wanted:
            where = self.c.rank_dir(0, p, 0)
            raise VerifyError("verify.layout", f"{where}: {name} is {'missing' if wanted else 'present'} but args {why}")
        return wanted

    def detect(self, p, v, prefix):
        """The Layer at `prefix` of chunk (p, v); also checks the optional modules against the args."""
        c = self.c
        if c.has(0, p, 0, v, prefix + "self_attention.linear_qkv.layer_norm_weight"):
            spec, norm = "te", prefix + "self_attention.linear_qkv.layer_norm_weight"
        elif c.has(0, p, 0, v, prefix + "input_layernorm.weight"):
            spec, norm = "local", prefix + "input_layernorm.weight"
        else:
            raise VerifyError("verify.layout", f"{c.rank_dir(0, p, 0)}: {prefix} has neither linear_qkv.layer_norm_weight (TE) nor input_layernorm.weight (local)")
        a = prefix + "self_attention."
        self.expect(p, v, a + "linear_qkv.bias", c.qkv_bias, f"say add_qkv_bias={c.qkv_bias}")
        self.expect(p, v, a + "q_layernorm.weight", c.qk_layernorm, f"say qk_layernorm={c.qk_layernorm}")
        self.expect(p, v, a + "k_layernorm.weight", c.qk_layernorm, f"say qk_layernorm={c.qk_layernorm}")
        moe = c.has(0, p, 0, v, prefix + "mlp.router.weight")
        if moe and not c.experts:
            raise VerifyError("verify.layout", f"{c.rank_dir(0, p, 0)}: {prefix}mlp.router.weight is present but args have no num_experts")
        if not moe and not c.has(0, p, 0, v, prefix + "mlp.linear_fc1.weight"):
            raise VerifyError("verify.layout", f"{c.rank_dir(0, p, 0)}: {prefix}mlp has neither a router (MoE) nor linear_fc1.weight (dense)")
        impl = self.moe.detect(p, v, prefix) if moe else None
        fused = spec == "te" and not moe
        pre_mlp = prefix + ("mlp.linear_fc1.layer_norm_weight" if fused else "pre_mlp_layernorm.weight")
        self.spec = self.spec or spec
        self.experts_impl = self.experts_impl or impl
        return Layer(spec, norm, moe, pre_mlp, impl)

    def attention(self, x, p, v, e, prefix, freqs):
        c = self.c
        s, b, _ = x.shape
        nq, hn, ng_local = c.heads // c.groups, c.head_dim, c.groups // c.tp
        a = prefix + "self_attention."
        out = 0
        for t in range(c.tp):
            bias = self.w(t, p, e, v, a + "linear_qkv.bias") if c.qkv_bias else None
            qkv = F.linear(x, self.w(t, p, e, v, a + "linear_qkv.weight"), bias)
            qkv = qkv.view(s, b, ng_local, (nq + 2) * hn)
            q, k, val = torch.split(qkv, [nq * hn, hn, hn], dim=3)
            q = q.reshape(s, b, ng_local * nq, hn)
            if c.qk_layernorm:
                q = mcore_rms_norm(q, self.w(t, p, e, v, a + "q_layernorm.weight"), c.eps)
                k = mcore_rms_norm(k, self.w(t, p, e, v, a + "k_layernorm.weight"), c.eps)
            q, k = apply_rotary(q, freqs), apply_rotary(k, freqs)
            k = k.repeat_interleave(nq, dim=2)
            val = val.repeat_interleave(nq, dim=2)
            scores = torch.einsum("sbhd,tbhd->bhst", q, k) / math.sqrt(hn)
            causal = torch.ones(s, s, dtype=torch.bool, device=x.device).triu(1)
            probs = torch.softmax(scores.float().masked_fill(causal, float("-inf")), dim=-1).to(x.dtype)
            ctx = torch.einsum("bhst,tbhd->sbhd", probs, val).reshape(s, b, ng_local * nq * hn)
            out = out + F.linear(ctx, self.w(t, p, e, v, a + "linear_proj.weight"))
        return out

    def gated_mlp(self, x, p, v, e, prefix):
        """MLP with gated_linear_unit over TP: per rank silu(gate_r) * up_r through its fc2, partials summed.
        `prefix` is the module (mlp. or mlp.shared_experts.); its weights come from EP file e."""
        out = 0
        for t in range(self.c.tp):
            gate, up = torch.chunk(F.linear(x, self.w(t, p, e, v, prefix + "linear_fc1.weight")), 2, dim=-1)
            out = out + F.linear(F.silu(gate) * up, self.w(t, p, e, v, prefix + "linear_fc2.weight"))
        return out

    def layer(self, h, layer, p, v, i, groups, freqs):
        c = self.c
        prefix = f"decoder.layers.{i}."
        spec = self.detect(p, v, prefix)
        mlp_in = torch.empty_like(h)
        for e, rows in enumerate(groups):
            hx = h[:, rows]
            hx = hx + self.attention(mcore_rms_norm(hx, self.w(0, p, e, v, spec.input_norm), c.eps), p, v, e, prefix, freqs)
            h[:, rows] = hx
            mlp_in[:, rows] = mcore_rms_norm(hx, self.w(0, p, e, v, spec.pre_mlp_norm), c.eps)
        if spec.moe:
            self.moe_layers += 1
            return h + self.moe.forward(mlp_in, layer, p, v, prefix, spec.experts_impl, groups)
        self.dense_layers += 1
        out = torch.empty_like(h)
        for e, rows in enumerate(groups):
            out[:, rows] = self.gated_mlp(mlp_in[:, rows], p, v, e, prefix + "mlp.")
        return h + out

    def output_weight_name(self, p, v):
        """output_layer.weight, or with tied embeddings on a single chunk the embedding it shares."""
        c = self.c
        if not (c.tied and p == 0 and v == 0):
            return "output_layer.weight"
        if c.has(0, p, 0, v, "output_layer.weight"):
            raise VerifyError("verify.layout", f"{c.rank_dir(0, p, 0)}: output_layer.weight is present, but with tied embeddings (args untie_embeddings_and_output_weights=False) on one pipeline stage Megatron builds none; the strict load rejects it")
        return "embedding.word_embeddings.weight"

    def run(self, ids, keep):
        c = self.c
        ids = ids.to(self.device)
        b, s = ids.shape
        groups = [list(range(r, b, c.ep)) for r in range(min(c.ep, b))]
        h = torch.empty(s, b, c.hidden, device=self.device, dtype=self.dtype)
        for e, rows in enumerate(groups):
            h[:, rows] = self.embed(ids[rows], e)
        keep("embedding", h.transpose(0, 1))
        freqs = mcore_rotary(s, c.head_dim, c.rotary_base, self.device)
        for layer, (p, v, i) in enumerate(c.chunk_map):
            h = self.layer(h, layer, p, v, i, groups, freqs)
            keep(f"layer {layer}", h.transpose(0, 1))
        last_p, last_v = c.pp - 1, c.vp - 1
        head = self.output_weight_name(last_p, last_v)
        logits = torch.empty(s, b, self.vocab, device=self.device, dtype=torch.float32)
        final = torch.empty_like(h)
        for e, rows in enumerate(groups):
            x = mcore_rms_norm(h[:, rows], self.w(0, last_p, e, last_v, "decoder.final_layernorm.weight"), c.eps)
            final[:, rows] = x
            full = torch.cat([F.linear(x, self.w(t, last_p, e, last_v, head)) for t in range(c.tp)], dim=-1)
            if full.shape[-1] != c.padded_vocab:
                raise VerifyError("verify.layout", f"{head} rows over TP ranks = {full.shape[-1]}; args padded_vocab_size={c.padded_vocab}")
            logits[:, rows] = full[..., : self.vocab].float()
        keep("final_norm", final.transpose(0, 1))
        return logits.transpose(0, 1)

    def features(self):
        c = self.c
        return {
            "qkvBias": c.qkv_bias, "qkLayernorm": c.qk_layernorm, "sharedExperts": bool(c.shared_ffn),
            "sharedExpertGate": c.shared_gate, "tiedEmbeddings": c.tied, "denseLayers": self.dense_layers, "moeLayers": self.moe_layers,
        }
