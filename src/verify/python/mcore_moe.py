"""MoE layers on the Megatron side (megatron/core/transformer/moe), computed from the rank files.

Each data-parallel group's tokens (batch rows of EP rank e, see mcore_forward.py) are routed with
that group's router copy; the routed experts then run over every EP x TP rank file holding them.
- Router (replicated, moe_router_pre_softmax=False): top-k of the logits, then softmax over the k
  (topk_softmax_with_capacity); with pre_softmax=True: softmax over all experts, then top-k, no
  renormalisation; with score_function sigmoid: sigmoid, top-k, renormalised when k > 1.
- Experts: global expert e lives on EP rank e // El at local index e % El, for SequentialMLP
  (local_experts.j.linear_fc1/fc2), TEGroupedMLP (linear_fc1.weight{j}) and legacy GroupedMLP
  (weight1 viewed [El, H, 2Y], weight2 viewed [El, Y, H], multiplied without transposing). Each TP
  rank's fc1 output is chunked into gate and up halves, silu(gate) * up, its fc2 gives a partial
  sum; partials are summed over TP ranks, scaled by the routing probability and scattered back.
- Shared experts (args.moe_shared_expert_intermediate_size; moe/shared_experts.py SharedExpertMLP):
  a dense gated MLP under mlp.shared_experts, TP-split like the dense MLP (not EP-split); with
  args.moe_shared_expert_gate its output is scaled by sigmoid(x @ gate_weight^T) ([1, H], replicated),
  then added to the routed output (moe_layer.py MoELayer.forward).
"""

import torch
import torch.nn.functional as F

from verify_errors import VerifyError


class McoreMoe:
    """The MoE part of McoreRunner: reads weights through the runner (its device, dtype and files)."""

    def __init__(self, runner):
        self.r = runner
        self.c = runner.c

    def w(self, t, p, e, v, name):
        return self.r.w(t, p, e, v, name)

    def detect(self, p, v, prefix):
        """The expert implementation of a MoE layer, after checking its shared experts against the args."""
        c, x = self.c, prefix + "mlp.experts."
        shared = prefix + "mlp.shared_experts."
        self.r.expect(p, v, shared + "linear_fc1.weight", bool(c.shared_ffn), f"say moe_shared_expert_intermediate_size={c.shared_ffn or None}")
        self.r.expect(p, v, shared + "gate_weight", c.shared_gate, f"say moe_shared_expert_gate={c.shared_gate}")
        if c.has(0, p, 0, v, x + "local_experts.0.linear_fc1.weight"):
            return "sequential"
        if c.has(0, p, 0, v, x + "linear_fc1.weight0"):
            return "te-grouped"
        if c.has(0, p, 0, v, x + "weight1"):
            return "grouped"
        raise VerifyError("verify.layout", f"{c.rank_dir(0, p, 0)}: {x}* matches no expert implementation")

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
            w1 = self.c.lazy(t, p, ep, v, x + "weight1").block(j, el).to(device=self.r.device, dtype=self.r.dtype).reshape(h, -1)
            w2 = self.c.lazy(t, p, ep, v, x + "weight2").block(j, el).to(device=self.r.device, dtype=self.r.dtype).reshape(-1, h)
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

    def forward(self, x, layer, p, v, prefix, impl, groups):
        """MoELayer: route each data-parallel group's tokens with its router copy, run the experts over
        all EP ranks, add the shared experts (from the group's EP file)."""
        c = self.c
        s, b, _ = x.shape
        tokens = x.reshape(s * b, c.hidden)
        probs = torch.empty(s * b, c.topk, device=self.r.device, dtype=self.r.dtype)
        idx = torch.empty(s * b, c.topk, device=self.r.device, dtype=torch.int64)
        flat_rows = torch.arange(s * b, device=self.r.device).view(s, b)
        for e, rows in enumerate(groups):
            sel = flat_rows[:, rows].reshape(-1)
            probs[sel], idx[sel] = self.route(tokens[sel], p, v, e, prefix)
        counts = torch.bincount(idx.flatten().cpu(), minlength=c.experts)
        self.r.unexercised.extend([layer, int(n)] for n in torch.nonzero(counts == 0).flatten())
        out = self.experts(tokens, probs, idx, p, v, prefix, impl).view(s, b, c.hidden)
        if c.shared_ffn:
            for e, rows in enumerate(groups):
                out[:, rows] = out[:, rows] + self.shared(x[:, rows], p, v, e, prefix)
        return out

    def shared(self, x, p, v, e, prefix):
        c, m = self.c, prefix + "mlp.shared_experts."
        out = self.r.gated_mlp(x, p, v, e, m)
        if c.shared_gate:
            out = out * torch.sigmoid(F.linear(x, self.w(0, p, e, v, m + "gate_weight")))
        return out
