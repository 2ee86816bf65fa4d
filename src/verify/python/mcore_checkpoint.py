"""A Megatron-Core legacy checkpoint folder, seen the way each rank sees it.

The layout comes from the rank files' own `args` (megatron-layout.md 2.3), never from our manifest:
tensor/pipeline/expert parallel sizes, virtual pipeline size, uneven first/last stage sizes, padded
vocab, query groups, kv channels (the head dim, which may differ from hidden / heads), rotary base,
norm epsilon, router top-k and mode, and the modules Megatron builds from args: add_qkv_bias
(linear_qkv.bias), qk_layernorm (q_layernorm / k_layernorm), moe_shared_expert_intermediate_size and
moe_shared_expert_gate (mlp.shared_experts.*), untie_embeddings_and_output_weights (False, Megatron's
default: the output layer shares the embedding). num_experts None is a dense model. The spec, the
expert implementation and dense vs MoE layers come from key names (3.2, 3.3). Rank folders are
mp_rank_TT[_PPP][_EEE], the PP part only when PP > 1, the EP part only when EP > 1 (1.1). Layer names
are local to a chunk (3.1).
"""

import os
import re

from torch_zip import Archive, LazyTensor
from verify_errors import VerifyError

RANK_FILE = "model_optim_rng.pt"
LAYER_KEY = re.compile(r"^decoder\.layers\.(\d+)\.")


def arg(args, name, default=None):
    value = getattr(args, name, None)
    return default if value is None else value


def stage_layer_counts(layers, pp, first, last):
    """Megatron's get_num_layers_to_build for an uneven pipeline (first/last stage given)."""
    if first is None and last is None:
        if layers % pp:
            raise VerifyError("verify.layout", f"args: num_layers={layers} is not divisible by pipeline_model_parallel_size={pp}")
        return [layers // pp] * pp
    middle = pp - (first is not None) - (last is not None)
    rest = layers - (first or 0) - (last or 0)
    if middle < 0 or rest < 0 or (middle == 0 and rest) or (middle and rest % middle):
        raise VerifyError("verify.layout", f"args: uneven pipeline first={first} last={last} does not split {layers} layers over {pp} stages")
    counts = [rest // middle if middle else 0] * pp
    if first is not None:
        counts[0] = first
    if last is not None:
        counts[-1] = last
    return counts


class McoreCheckpoint:
    def __init__(self, root):
        self.root = root
        tracker = os.path.join(root, "latest_checkpointed_iteration.txt")
        try:
            with open(tracker, encoding="utf-8") as f:
                it = f.read().strip()
        except OSError as e:
            raise VerifyError("verify.mcore-missing", f"{tracker}: {e.strerror}; not a Megatron checkpoint folder") from e
        self.iter_dir = os.path.join(root, "release" if it == "release" else f"iter_{int(it):07d}")
        first = next((d for d in ("mp_rank_00", "mp_rank_00_000", "mp_rank_00_000_000") if os.path.exists(self._path(d))), None)
        if first is None:
            raise VerifyError("verify.mcore-missing", f"{self.iter_dir}: no mp_rank_00* folder with {RANK_FILE}")
        self.archives = {}
        args = self._archive_at(first).root.get("args")
        if args is None:
            raise VerifyError("verify.layout", f"{self._path(first)}: no 'args' entry; the forward check reads the layout from it")
        self.args = args
        self._read_layout(args)

    def _path(self, rank_dir):
        return os.path.join(self.iter_dir, rank_dir, RANK_FILE)

    def _archive_at(self, rank_dir):
        if rank_dir not in self.archives:
            path = self._path(rank_dir)
            if not os.path.exists(path):
                raise VerifyError("verify.mcore-missing", f"{path}: missing rank file")
            self.archives[rank_dir] = Archive(path)
        return self.archives[rank_dir]

    def _read_layout(self, a):
        self.tp = arg(a, "tensor_model_parallel_size", 1)
        self.pp = arg(a, "pipeline_model_parallel_size", 1)
        self.ep = arg(a, "expert_model_parallel_size", 1)
        self.etp = arg(a, "expert_tensor_parallel_size", self.tp)
        if self.etp != self.tp:
            raise VerifyError("verify.layout", f"args: expert_tensor_parallel_size={self.etp} differs from tensor_model_parallel_size={self.tp}; legacy files then do not form a grid")
        self.layers = arg(a, "num_layers")
        self.vp = arg(a, "virtual_pipeline_model_parallel_size", 1)
        per_vp = arg(a, "num_layers_per_virtual_pipeline_stage")
        if per_vp and self.vp == 1:
            self.vp = self.layers // (self.pp * per_vp)
        self.first = arg(a, "decoder_first_pipeline_num_layers", arg(a, "num_layers_in_first_pipeline_stage"))
        self.last = arg(a, "decoder_last_pipeline_num_layers", arg(a, "num_layers_in_last_pipeline_stage"))
        if self.vp > 1 and (self.first is not None or self.last is not None):
            raise VerifyError("verify.layout", "args: a virtual pipeline together with an uneven first/last stage is not supported by the forward check")
        self.hidden = arg(a, "hidden_size")
        self.heads = arg(a, "num_attention_heads")
        self.groups = arg(a, "num_query_groups", self.heads) if arg(a, "group_query_attention", False) else self.heads
        self.head_dim = arg(a, "kv_channels", self.hidden // self.heads)
        self.padded_vocab = arg(a, "padded_vocab_size")
        self.rotary_base = arg(a, "rotary_base", 10000)
        self.eps = arg(a, "norm_epsilon", 1e-5)
        self.experts = arg(a, "num_experts", 0)
        self.topk = arg(a, "moe_router_topk", 2)
        self.pre_softmax = bool(arg(a, "moe_router_pre_softmax", False))
        self.score_function = arg(a, "moe_router_score_function", "softmax")
        self.qkv_bias = bool(arg(a, "add_qkv_bias", False))
        self.qk_layernorm = bool(arg(a, "qk_layernorm", False))
        self.shared_ffn = arg(a, "moe_shared_expert_intermediate_size", 0) if self.experts else 0
        self.shared_gate = bool(arg(a, "moe_shared_expert_gate", False)) and bool(self.shared_ffn)
        self.tied = not arg(a, "untie_embeddings_and_output_weights", False)
        for name in ("num_layers", "hidden_size", "num_attention_heads", "padded_vocab_size"):
            if getattr(a, name, None) is None:
                raise VerifyError("verify.layout", f"args has no {name}")
        if arg(a, "rotary_percent", 1.0) != 1.0 or arg(a, "rotary_interleaved", False) or arg(a, "add_bias_linear", False):
            raise VerifyError("verify.layout", "args: rotary_percent != 1, rotary_interleaved, or add_bias_linear are not supported by the forward check")
        if (self.experts or 1) % self.ep or self.groups % self.tp or self.padded_vocab % self.tp:
            raise VerifyError("verify.layout", f"args: EP={self.ep}, TP={self.tp} do not divide experts={self.experts}, query groups={self.groups}, padded vocab={self.padded_vocab}")
        self.local_experts = self.experts // self.ep
        self.chunk_map = self._chunk_map()

    def rank_dir(self, t, p, e):
        name = f"mp_rank_{t:02d}"
        if self.pp > 1:
            name += f"_{p:03d}"
        if self.ep > 1:
            name += f"_{e:03d}"
        return name

    def model(self, t, p, e, v):
        root = self._archive_at(self.rank_dir(t, p, e)).root
        key = f"model{v}" if self.vp > 1 else "model"
        m = root.get(key)
        if m is None:
            raise VerifyError("verify.layout", f"{self._path(self.rank_dir(t, p, e))}: no {key!r} entry (args say VPP={self.vp})")
        return m

    def lazy(self, t, p, e, v, name):
        value = self.model(t, p, e, v).get(name)
        if not isinstance(value, LazyTensor):
            raise VerifyError("verify.missing-tensor", f"{self._path(self.rank_dir(t, p, e))}: {'model' + str(v) if self.vp > 1 else 'model'}/{name} is missing or not a tensor")
        return value

    def tensor(self, t, p, e, v, name):
        return self.lazy(t, p, e, v, name).load()

    def has(self, t, p, e, v, name):
        return isinstance(self.model(t, p, e, v).get(name), LazyTensor)

    def _chunk_map(self):
        """global layer -> (pp rank, chunk, local index), per megatron-layout 3.1; checked against the keys present."""
        out = []
        if self.vp > 1:
            per = self.layers // (self.pp * self.vp)
            spans = [(p, v, v * self.layers // self.vp + p * per, per) for p in range(self.pp) for v in range(self.vp)]
        else:
            counts = stage_layer_counts(self.layers, self.pp, self.first, self.last)
            spans = [(p, 0, sum(counts[:p]), counts[p]) for p in range(self.pp)]
        for p, v, offset, count in sorted(spans, key=lambda s: s[2]):
            present = {int(m.group(1)) for k in self.model(0, p, 0, v) if isinstance(k, str) and (m := LAYER_KEY.match(k))}
            if present != set(range(count)):
                raise VerifyError("verify.layout", f"{self._path(self.rank_dir(0, p, 0))}: chunk {v} holds local layers {sorted(present)}; args say {count} layers from global layer {offset}")
            out.extend((p, v, i) for i in range(count))
        if len(out) != self.layers:
            raise VerifyError("verify.layout", f"the pipeline chunks hold {len(out)} layers; args say num_layers={self.layers}")
        return out

    def describe(self):
        return {
            "tp": self.tp, "pp": self.pp, "ep": self.ep, "etp": self.etp, "vpp": self.vp,
            "ppFirstLayers": self.first, "ppLastLayers": self.last, "paddedVocab": self.padded_vocab,
            "rankFiles": self.tp * self.pp * self.ep, "routerPreSoftmax": self.pre_softmax,
            "routerScoreFunction": self.score_function, "tiedEmbeddings": self.tied,
        }
