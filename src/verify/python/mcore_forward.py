"""The Megatron side of the forward check, computed from the rank files the way each rank computes.

Nothing here rebuilds an HF tensor. Activations are [s, b, h] as in Megatron-Core. For each layer:
- Data parallel: batch row r belongs to data-parallel rank r % EP, which is EP rank r % EP (the rank
  order is tp-cp-ep-dp-pp, megatron-layout 1.3); its non-expert weights come from the files of that EP
  rank, so every EP file's replica of the dense weights takes part.
- Vocab-parallel embedding: TP rank t looks up the ids in [t*Vp/TP, (t+1)*Vp/TP), zeroes the others,
  and the partial embeddings are summed (the all-reduce).
- Attention: each TP rank runs its column-parallel linear_qkv, views the output as [s, b, ng/TP,
  (nq+2)*hn], splits each query group into q (nq*hn), k (hn), v (hn) (attention.py
  get_query_key_value_tensors), applies rotary (_rotate_half, emb = cat(freqs, freqs)), expands k/v
  with repeat_interleave over the nq heads of a group, scales by 1/sqrt(hn), causal softmax in fp32;
  its row-parallel linear_proj gives a partial output; partials are summed over TP ranks.
- Router (replicated, moe_router_pre_softmax=False): top-k of the logits, then softmax over the k
  (topk_softmax_with_capacity); with pre_softmax=True: softmax over all experts, then top-k.
- Experts: global expert e lives on EP rank e // El at local index e % El, for SequentialMLP
  (local_experts.j.linear_fc1/fc2), TEGroupedMLP (linear_fc1.weight{j}) and legacy GroupedMLP
  (weight1 viewed [El, H, 2Y], weight2 viewed [El, Y, H], multiplied without transposing). Each TP
  rank's fc1 output is chunked into gate and up halves, silu(gate) * up, its fc2 gives a partial
  sum; partials are summed over TP ranks, scaled by the routing probability and scattered back.
- Output layer: column-parallel over the padded vocab, concatenated, then sliced to the real vocab.
"""

import math

import torch
import torch.nn.functional as F

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


class McoreRunner:
    def __init__(self, ckpt, vocab, device, dtype):
        self.c = ckpt
        self.vocab = vocab
        self.device = device
        self.dtype = dtype
        self.experts_impl = None
        self.spec = None
        self.unexercised = []

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

    def detect(self, p, v, prefix):
        if self.c.has(0, p, 0, v, prefix + "self_attention.linear_qkv.layer_norm_weight"):
            spec, norm = "te", prefix + "self_attention.linear_qkv.layer_norm_weight"
        elif self.c.has(0, p, 0, v, prefix + "input_layernorm.weight"):
            spec, norm = "local", prefix + "input_layernorm.weight"
        else:
            raise VerifyError("verify.layout", f"{self.c.rank_dir(0, p, 0)}: {prefix} has neither linear_qkv.layer_norm_weight (TE) nor input_layernorm.weight (local)")
        x = prefix + "mlp.experts."
        if self.c.has(0, p, 0, v, x + "local_experts.0.linear_fc1.weight"):
            impl = "sequential"
        elif self.c.has(0, p, 0, v, x + "linear_fc1.weight0"):
            impl = "te-grouped"
        elif self.c.has(0, p, 0, v, x + "weight1"):
            impl = "grouped"
        else:
            raise VerifyError("verify.layout", f"{self.c.rank_dir(0, p, 0)}: {x}* matches no expert implementation")
        self.spec = self.spec or spec
        self.experts_impl = self.experts_impl or impl
        return norm, impl

    def attention(self, x, p, v, e, prefix, freqs):
        c = self.c
        s, b, _ = x.shape
        nq, hn, ng_local = c.heads // c.groups, c.head_dim, c.groups // c.tp
        out = 0
        for t in range(c.tp):
            qkv = F.linear(x, self.w(t, p, e, v, prefix + "self_attention.linear_qkv.weight"))
            qkv = qkv.view(s, b, ng_local, (nq + 2) * hn)
            q, k, val = torch.split(qkv, [nq * hn, hn, hn], dim=3)
            q = q.reshape(s, b, ng_local * nq, hn)
            q, k = apply_rotary(q, freqs), apply_rotary(k, freqs)
            k = k.repeat_interleave(nq, dim=2)
            val = val.repeat_interleave(nq, dim=2)
            scores = torch.einsum("sbhd,tbhd->bhst", q, k) / math.sqrt(hn)
            causal = torch.ones(s, s, dtype=torch.bool, device=x.device).triu(1)
            probs = torch.softmax(scores.float().masked_fill(causal, float("-inf")), dim=-1).to(x.dtype)
            ctx = torch.einsum("bhst,tbhd->sbhd", probs, val).reshape(s, b, ng_local * nq * hn)
            out = out + F.linear(ctx, self.w(t, p, e, v, prefix + "self_attention.linear_proj.weight"))
        return out

    def route(self, x, p, v, e, prefix):
        logits = F.linear(x, self.w(0, p, e, v, prefix + "mlp.router.weight"))
        k = self.c.topk
        if self.c.score_function == "sigmoid":
            scores = torch.sigmoid(logits.float())
            probs, idx = torch.topk(scores, k, dim=-1)
            probs = probs / (probs.sum(dim=-1, keepdim=True) + 1e-20) if k > 1 else probs
        elif self.c.pre_softmax:
            probs, idx = torch.topk(torch.softmax(logits, dim=-1, dtype=torch.float32), k, dim=-1)
        else:
            top, idx = torch.topk(logits, k, dim=-1)
            probs = torch.softmax(top, dim=-1, dtype=torch.float32)
        return probs.to(x.dtype), idx

    def expert_loaders(self, t, p, ep, v, prefix, impl):
        """Per local expert j, a function loading (fc1, fc2) of rank file (t, p, ep) as callables on activations.
        Each expert is read when it runs, so one expert's shard is in memory at a time."""
        x = prefix + "mlp.experts."
        el, h = self.c.local_experts, self.c.hidden

        def grouped(j):
            # GroupedMLP memory: weight1 = [El, H, 2Y] (each fc1 transposed), weight2 = [El, Y, H]; x @ w, no transpose
            w1 = self.c.lazy(t, p, ep, v, x + "weight1").block(j, el).to(device=self.device, dtype=self.dtype).reshape(h, -1)
            w2 = self.c.lazy(t, p, ep, v, x + "weight2").block(j, el).to(device=self.device, dtype=self.dtype).reshape(-1, h)
            return (lambda a: a @ w1), (lambda a: a @ w2)

        def linear(j):
            if impl == "te-grouped":
                n1, n2 = f"{x}linear_fc1.weight{j}", f"{x}linear_fc2.weight{j}"
            else:
                n1, n2 = f"{x}local_experts.{j}.linear_fc1.weight", f"{x}local_experts.{j}.linear_fc2.weight"
            w1, w2 = self.w(t, p, ep, v, n1), self.w(t, p, ep, v, n2)
            return (lambda a: F.linear(a, w1)), (lambda a: F.linear(a, w2))

        return [(lambda j=j: grouped(j) if impl == "grouped" else linear(j)) for j in range(el)]

    def experts(self, tokens, probs, idx, p, v, prefix, impl):
        c = self.c
        out = torch.zeros_like(tokens)
        for ep in range(c.ep):
            partial = {}
            for t in range(c.tp):
                for j, load in enumerate(self.expert_loaders(t, p, ep, v, prefix, impl)):
                    rows, slot = torch.where(idx == ep * c.local_experts + j)
                    if rows.numel() == 0:
                        continue
                    fc1, fc2 = load()
                    gate, up = torch.chunk(fc1(tokens[rows]), 2, dim=-1)
                    y = fc2(F.silu(gate) * up)
                    partial[j] = (rows, slot, y if j not in partial else partial[j][2] + y)
            for rows, slot, y in partial.values():
                out.index_add_(0, rows, y * probs[rows, slot, None])
        return out

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
            prefix = f"decoder.layers.{i}."
            norm, impl = self.detect(p, v, prefix)
            mlp_in = torch.empty_like(h)
            for e, rows in enumerate(groups):
                hx = h[:, rows]
                hx = hx + self.attention(mcore_rms_norm(hx, self.w(0, p, e, v, norm), c.eps), p, v, e, prefix, freqs)
                h[:, rows] = hx
                mlp_in[:, rows] = mcore_rms_norm(hx, self.w(0, p, e, v, prefix + "pre_mlp_layernorm.weight"), c.eps)
            tokens = mlp_in.reshape(s * b, c.hidden)
            probs = torch.empty(s * b, c.topk, device=self.device, dtype=self.dtype)
            idx = torch.empty(s * b, c.topk, device=self.device, dtype=torch.int64)
            flat_rows = torch.arange(s * b, device=self.device).view(s, b)
            for e, rows in enumerate(groups):
                sel = flat_rows[:, rows].reshape(-1)
                probs[sel], idx[sel] = self.route(tokens[sel], p, v, e, prefix)
            counts = torch.bincount(idx.flatten().cpu(), minlength=c.experts)
            self.unexercised.extend([layer, int(x)] for x in torch.nonzero(counts == 0).flatten())
            h = h + self.experts(tokens, probs, idx, p, v, prefix, impl).view(s, b, c.hidden)
            keep(f"layer {layer}", h.transpose(0, 1))
        last_p, last_v = c.pp - 1, c.vp - 1
        logits = torch.empty(s, b, self.vocab, device=self.device, dtype=torch.float32)
        final = torch.empty_like(h)
        for e, rows in enumerate(groups):
            x = mcore_rms_norm(h[:, rows], self.w(0, last_p, e, last_v, "decoder.final_layernorm.weight"), c.eps)
            final[:, rows] = x
            parts = [F.linear(x, self.w(t, last_p, e, last_v, "output_layer.weight")) for t in range(c.tp)]
            full = torch.cat(parts, dim=-1)
            if full.shape[-1] != c.padded_vocab:
                raise VerifyError("verify.layout", f"output_layer rows over TP ranks = {full.shape[-1]}; args padded_vocab_size={c.padded_vocab}")
            logits[:, rows] = full[..., : self.vocab].float()
        keep("final_norm", final.transpose(0, 1))
        return logits.transpose(0, 1)
