#!/usr/bin/env python3
"""Independent oracle for Megatron-Core legacy checkpoints converted from a HuggingFace model:
Mixtral, and the Llama/Mistral (dense, tied embeddings), Qwen2-MoE (QKV bias, shared expert) and
Qwen3-MoE (q/k layernorm) features.

Written from /work/shared/megatron-layout.md, the golden key lists and the Megatron-LM facts in
mappings/README.md only (not from the TypeScript converter). It reads the HF safetensors itself, computes the state dict every rank file
must hold, torch.load's each rank file and compares keys, key order, shapes, dtypes and exact bits.

    reference_mcore.py HF_DIR MCORE_DIR --tp T --pp P --ep E [--vpp V]
        [--pp-first-layers N] [--pp-last-layers N] [--spec te|local]
        [--experts sequential|te-grouped|grouped] [--divisible-by 128]
        [--dtype keep|bf16|fp16|fp32]
    reference_mcore.py --self-test
    reference_mcore.py --golden GOLDEN_DIR

Prints one JSON object {"ok", "files_checked", "tensors_checked", "problems"}; exit status 0 when
ok, 1 when the checkpoint has problems, 2 when the inputs (HF folder, layout options) are unusable.
Defaults: --spec te, --experts sequential, --divisible-by 128, --dtype keep.
Needs torch (1.13 or 2.x); nothing else beyond the standard library.

Decisions where megatron-layout.md leaves room:
- te spec keys are those of TransformerEngine >= 2.0: `_extra_state` (None) for core_attention,
  linear_qkv, linear_proj, pre_mlp_layernorm, final_layernorm, output_layer, each sequential
  expert linear, and one per grouped linear (te-grouped).
- The tracker must hold exactly `release` (no newline), as Megatron main writes it.
- Uneven PP with VPP: each stage's count is split evenly over its VPP chunks, chunks run chunk-major
  (every stage's chunk 0 first), i.e. cumulative offsets.
- Every tensor must be contiguous and own exactly its storage (a view into a larger storage would
  bloat the file); values are compared bit for bit.
- On torch >= 2.6 each rank file must also load with weights_only=True once argparse.Namespace is
  allow-listed (what Megatron >= 0.14 does).
"""

import argparse
import collections
import importlib.util
import json
import os
import shutil
import struct
import sys
import tempfile

import torch

TRACKER = "latest_checkpointed_iteration.txt"
RANK_FILE = "model_optim_rng.pt"
MAX_PROBLEMS = 200

ST_DTYPES = {
    "BF16": torch.bfloat16,
    "F16": torch.float16,
    "F32": torch.float32,
    "F64": torch.float64,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
TARGET_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
BITS_VIEW = {2: torch.int16, 4: torch.int32, 8: torch.int64}
TOP_LEVEL_ALLOWED = {
    "args",
    "checkpoint_version",
    "iteration",
    "num_floating_point_operations_so_far",
    "optimizer",
    "opt_param_scheduler",
    "rng_state",
    "rerun_state_machine",
}


class InputError(Exception):
    """The oracle's own inputs (HF folder, layout options) are unusable."""


# ---------------------------------------------------------------------------------------------
# HF side: safetensors reader and model dimensions
# ---------------------------------------------------------------------------------------------

# F: routed expert (or dense MLP) size; Fs: shared expert size (0: none); E: 0 for a dense model
Dims = collections.namedtuple("Dims", "L H F np ng hn E topk V rope_theta eps Fs tie norm_topk",
                              defaults=(0, False, True))


def read_safetensors(path):
    """name -> tensor, validating the header the way the reference reader does (torch-format 5.1)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise InputError("%s: shorter than 8 bytes" % path)
    (n,) = struct.unpack("<Q", blob[:8])
    if n > 100000000 or 8 + n > len(blob):
        raise InputError("%s: bad header length %d" % (path, n))
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    spans = []
    for name, info in header.items():
        dtype = ST_DTYPES.get(info["dtype"])
        if dtype is None:
            raise InputError("%s: %s: unsupported dtype %s" % (path, name, info["dtype"]))
        begin, end = info["data_offsets"]
        shape = list(info["shape"])
        count = 1
        for d in shape:
            count *= d
        itemsize = torch.tensor([], dtype=dtype).element_size()
        if end - begin != count * itemsize:
            raise InputError("%s: %s: data_offsets do not match shape" % (path, name))
        spans.append((begin, end))
        if count == 0:
            out[name] = torch.empty(shape, dtype=dtype)
        else:
            raw = bytearray(blob[base + begin : base + end])
            out[name] = torch.frombuffer(raw, dtype=dtype).reshape(shape)
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise InputError("%s: tensor data does not tile the buffer" % path)
        position = end
    if base + position != len(blob):
        raise InputError("%s: trailing bytes after tensor data" % path)
    return out


def read_hf_tensors(hf_dir):
    index_path = os.path.join(hf_dir, "model.safetensors.index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            weight_map = json.load(f)["weight_map"]
        files = sorted(set(weight_map.values()))
    elif os.path.exists(os.path.join(hf_dir, "model.safetensors")):
        weight_map = None
        files = ["model.safetensors"]
    else:
        raise InputError("%s: no model.safetensors.index.json or model.safetensors" % hf_dir)
    tensors = {}
    for file_name in files:
        for name, tensor in read_safetensors(os.path.join(hf_dir, file_name)).items():
            if weight_map is not None and weight_map.get(name) != file_name:
                raise InputError("%s: %s is not mapped to this shard in the index" % (file_name, name))
            tensors[name] = tensor
    if weight_map is not None:
        missing = sorted(set(weight_map) - set(tensors))
        if missing:
            raise InputError("index names tensors missing from the shards: %s" % missing[:5])
    return tensors


def dims_from_hf_config(config):
    H = config["hidden_size"]
    np_ = config["num_attention_heads"]
    rope = config.get("rope_theta")
    if rope is None:
        rope = (config.get("rope_parameters") or {}).get("rope_theta", 10000.0)
    qwen_moe = config.get("model_type") in ("qwen2_moe", "qwen3_moe")
    return Dims(
        L=config["num_hidden_layers"],
        H=H,
        F=config["moe_intermediate_size"] if qwen_moe else config["intermediate_size"],
        np=np_,
        ng=config.get("num_key_value_heads") or np_,
        hn=config.get("head_dim") or H // np_,
        E=config.get("num_local_experts") or config.get("num_experts") or 0,
        topk=config.get("num_experts_per_tok") or 0,
        V=config["vocab_size"],
        rope_theta=rope,
        eps=config.get("rms_norm_eps"),
        Fs=config.get("shared_expert_intermediate_size") or 0,
        tie=bool(config.get("tie_word_embeddings", False)),
        # transformers: Qwen MoE configs default norm_topk_prob to False; Mixtral always renormalises
        norm_topk=bool(config.get("norm_topk_prob", not qwen_moe)),
    )


class HfSource:
    """Mixtral weights by role, from either the per-expert (w1/w2/w3) or the fused v5 layout."""

    def __init__(self, hf_dir):
        with open(os.path.join(hf_dir, "config.json")) as f:
            self.dims = dims_from_hf_config(json.load(f))
        self.t = read_hf_tensors(hf_dir)
        self.dtype = self.t["model.embed_tokens.weight"].dtype
        self.qkv_bias = "model.layers.0.self_attn.q_proj.bias" in self.t
        self.qk_norm = "model.layers.0.self_attn.q_norm.weight" in self.t

    def _get(self, name):
        if name not in self.t:
            raise InputError("HF checkpoint has no tensor %s" % name)
        return self.t[name]

    def embed(self):
        return self._get("model.embed_tokens.weight")

    def lm_head(self):
        return self.embed() if self.dims.tie else self._get("lm_head.weight")

    def final_norm(self):
        return self._get("model.norm.weight")

    def _mlp(self, p):
        """(gate, down, up) of a gate_proj/down_proj/up_proj MLP, the order of Mixtral's (w1, w2, w3)."""
        return tuple(self._get(p + n + "_proj.weight") for n in ("gate", "down", "up"))

    def layer(self, i):
        p = "model.layers.%d." % i
        d = self.dims
        w = {
            "q": self._get(p + "self_attn.q_proj.weight"),
            "k": self._get(p + "self_attn.k_proj.weight"),
            "v": self._get(p + "self_attn.v_proj.weight"),
            "o": self._get(p + "self_attn.o_proj.weight"),
            "in_norm": self._get(p + "input_layernorm.weight"),
            "post_norm": self._get(p + "post_attention_layernorm.weight"),
        }
        if self.qkv_bias:
            for n in "qkv":
                w[n + "_bias"] = self._get(p + "self_attn.%s_proj.bias" % n)
        if self.qk_norm:
            w["q_norm"] = self._get(p + "self_attn.q_norm.weight")
            w["k_norm"] = self._get(p + "self_attn.k_norm.weight")
        if d.Fs:
            w["shared"] = self._mlp(p + "mlp.shared_expert.")
            w["shared_gate"] = self._get(p + "mlp.shared_expert_gate.weight")
        if d.E == 0:
            w["mlp"] = self._mlp(p + "mlp.")
        elif p + "mlp.experts.0.gate_proj.weight" in self.t:
            w["router"] = self._get(p + "mlp.gate.weight")
            w["experts"] = [self._mlp(p + "mlp.experts.%d." % e) for e in range(d.E)]
        elif p + "block_sparse_moe.gate.weight" in self.t:
            w["router"] = self.t[p + "block_sparse_moe.gate.weight"]
            w["experts"] = [
                tuple(self._get(p + "block_sparse_moe.experts.%d.%s.weight" % (e, n)) for n in ("w1", "w2", "w3"))
                for e in range(d.E)
            ]
        else:
            w["router"] = self._get(p + "mlp.gate.weight")
            gate_up = self._get(p + "mlp.experts.gate_up_proj")
            down = self._get(p + "mlp.experts.down_proj")
            if list(gate_up.shape) != [d.E, 2 * d.F, d.H] or list(down.shape) != [d.E, d.H, d.F]:
                raise InputError("layer %d: fused expert shapes %s / %s are not [E,2F,H] / [E,H,F]"
                                 % (i, list(gate_up.shape), list(down.shape)))
            w["experts"] = [(gate_up[e, : d.F], down[e], gate_up[e, d.F :]) for e in range(d.E)]
        return w


class ZeroSource:
    """Zero tensors of the right shapes: lets the golden mode reuse the layout code without files."""

    def __init__(self, dims, dtype):
        self.dims = dims
        self.dtype = dtype
        self.qkv_bias = False
        self.qk_norm = False

    def _z(self, *shape):
        return torch.zeros(shape, dtype=self.dtype)

    def embed(self):
        return self._z(self.dims.V, self.dims.H)

    def lm_head(self):
        return self._z(self.dims.V, self.dims.H)

    def final_norm(self):
        return self._z(self.dims.H)

    def layer(self, i):
        d = self.dims
        expert = (self._z(d.F, d.H), self._z(d.H, d.F), self._z(d.F, d.H))
        return {
            "q": self._z(d.np * d.hn, d.H),
            "k": self._z(d.ng * d.hn, d.H),
            "v": self._z(d.ng * d.hn, d.H),
            "o": self._z(d.H, d.np * d.hn),
            "in_norm": self._z(d.H),
            "post_norm": self._z(d.H),
            "router": self._z(d.E, d.H),
            "experts": [expert] * d.E,
        }


# ---------------------------------------------------------------------------------------------
# Layout: ranks, folders, layer and expert placement (megatron-layout 1.1, 3.1)
# ---------------------------------------------------------------------------------------------

Layout = collections.namedtuple("Layout", "tp pp ep vpp first last spec experts divisible_by dtype")


def stage_layer_counts(L, lay):
    if lay.first is None and lay.last is None:
        if L % lay.pp:
            raise InputError("num_layers %d is not divisible by PP %d" % (L, lay.pp))
        return [L // lay.pp] * lay.pp
    if lay.pp < 2:
        raise InputError("--pp-first-layers/--pp-last-layers need PP > 1")
    middle_stages = lay.pp - (lay.first is not None) - (lay.last is not None)
    middle_layers = L - (lay.first or 0) - (lay.last or 0)
    if middle_layers < 0 or (middle_stages == 0 and middle_layers) or (middle_stages and middle_layers % middle_stages):
        raise InputError("uneven PP: %d layers cannot be split with first=%s last=%s over %d stages"
                         % (L, lay.first, lay.last, lay.pp))
    counts = [middle_layers // middle_stages if middle_stages else 0] * lay.pp
    if lay.first is not None:
        counts[0] = lay.first
    if lay.last is not None:
        counts[-1] = lay.last
    return counts


def chunk_layers(L, lay):
    """(pp_rank, vp_chunk) -> global layer indices. Chunks run chunk-major: every stage's chunk 0,
    then every stage's chunk 1, ... (get_transformer_layer_offset); each stage's count / VP."""
    vp = lay.vpp or 1
    counts = stage_layer_counts(L, lay)
    out = {}
    nxt = 0
    for v in range(vp):
        for p in range(lay.pp):
            if counts[p] % vp:
                raise InputError("PP stage %d has %d layers, not divisible by VPP %d" % (p, counts[p], vp))
            n = counts[p] // vp
            out[(p, v)] = list(range(nxt, nxt + n))
            nxt += n
    return out


def rank_folder(t, p, e, lay):
    name = "mp_rank_%02d" % t
    if lay.pp > 1:
        name += "_%03d" % p
    if lay.ep > 1:
        name += "_%03d" % e
    return name


def padded_vocab(V, lay):
    multiple = lay.divisible_by * lay.tp
    return -(-V // multiple) * multiple


def check_divisibility(d, lay):
    if d.E % lay.ep:
        raise InputError("num_experts %d is not divisible by EP %d" % (d.E, lay.ep))
    for what, n in (("(np+2ng)*hn", (d.np + 2 * d.ng) * d.hn), ("np*hn", d.np * d.hn), ("F", d.F)):
        if n % lay.tp:
            raise InputError("%s = %d is not divisible by TP %d" % (what, n, lay.tp))


# ---------------------------------------------------------------------------------------------
# Expected tensors (megatron-layout 4a-4f)
# ---------------------------------------------------------------------------------------------


def split(t, dim, parts, rank):
    size = t.shape[dim] // parts
    return t.narrow(dim, rank * size, size)


def fused_qkv(w, d):
    nq = d.np // d.ng
    q = w["q"].reshape(d.ng, nq * d.hn, d.H)
    k = w["k"].reshape(d.ng, d.hn, d.H)
    v = w["v"].reshape(d.ng, d.hn, d.H)
    return torch.cat([q, k, v], dim=1).reshape(-1, d.H)


def fused_qkv_bias(w, d):
    """linear_qkv.bias: added before the per-group view, so grouped like the weight rows."""
    nq = d.np // d.ng
    q = w["q_bias"].reshape(d.ng, nq * d.hn)
    k = w["k_bias"].reshape(d.ng, d.hn)
    v = w["v_bias"].reshape(d.ng, d.hn)
    return torch.cat([q, k, v], dim=1).reshape(-1)


def pad_rows(t, Vp):
    extra = Vp - t.shape[0]
    if extra == 0:
        return t
    return torch.cat([t, t[-1:].expand(extra, t.shape[1])], dim=0)


def expert_fc(expert, tp, t):
    w1, w2, w3 = expert
    fc1 = torch.cat([split(w1, 0, tp, t), split(w3, 0, tp, t)], dim=0)
    fc2 = split(w2, 1, tp, t)
    return fc1, fc2


def add_experts(sd, pre, w, d, lay, t, e):
    El = d.E // lay.ep
    fcs = [expert_fc(w["experts"][e * El + j], lay.tp, t) for j in range(El)]
    px = pre + "mlp.experts."
    if lay.experts == "sequential":
        for j, (fc1, fc2) in enumerate(fcs):
            q = "%slocal_experts.%d." % (px, j)
            sd[q + "linear_fc1.weight"] = fc1
            sd[q + "linear_fc1._extra_state"] = None
            sd[q + "linear_fc2.weight"] = fc2
            sd[q + "linear_fc2._extra_state"] = None
    elif lay.experts == "te-grouped":
        for n, idx in (("linear_fc1", 0), ("linear_fc2", 1)):
            for j, fc in enumerate(fcs):
                sd["%s%s.weight%d" % (px, n, j)] = fc[idx]
            sd["%s%s._extra_state" % (px, n)] = None
    else:  # legacy GroupedMLP: memory of weight1 is [El, H, 2Y] with block j = fc1_j^T
        sd[px + "weight1"] = torch.stack([fc1.t() for fc1, _ in fcs]).reshape(d.H, -1)
        sd[px + "weight2"] = torch.cat([fc2.t() for _, fc2 in fcs], dim=0)


def add_layer(sd, i, w, d, lay, t, e):
    pre = "decoder.layers.%d." % i
    te = lay.spec == "te"
    if te:
        sd[pre + "self_attention.core_attention._extra_state"] = None
    else:
        sd[pre + "input_layernorm.weight"] = w["in_norm"]
    sd[pre + "self_attention.linear_proj.weight"] = split(w["o"], 1, lay.tp, t)
    sd[pre + "self_attention.linear_proj._extra_state"] = None
    if te:
        sd[pre + "self_attention.linear_qkv.layer_norm_weight"] = w["in_norm"]
    sd[pre + "self_attention.linear_qkv.weight"] = split(fused_qkv(w, d), 0, lay.tp, t)
    if "q_bias" in w:
        sd[pre + "self_attention.linear_qkv.bias"] = split(fused_qkv_bias(w, d), 0, lay.tp, t)
    sd[pre + "self_attention.linear_qkv._extra_state"] = None
    for n in ("q", "k"):
        if n + "_norm" in w:  # TENorm under TE (TE >= 1.13 norms have _extra_state), torch RMSNorm locally
            sd[pre + "self_attention.%s_layernorm.weight" % n] = w[n + "_norm"]
            if te:
                sd[pre + "self_attention.%s_layernorm._extra_state" % n] = None
    if "mlp" in w:  # dense: TE fuses the pre-MLP norm into linear_fc1, pre_mlp_layernorm is IdentityOp
        if not te:
            sd[pre + "pre_mlp_layernorm.weight"] = w["post_norm"]
        else:
            sd[pre + "mlp.linear_fc1.layer_norm_weight"] = w["post_norm"]
        add_mlp(sd, pre + "mlp.", w["mlp"], lay.tp, t)
        return
    sd[pre + "pre_mlp_layernorm.weight"] = w["post_norm"]
    if te:
        sd[pre + "pre_mlp_layernorm._extra_state"] = None
    sd[pre + "mlp.router.weight"] = w["router"]
    add_experts(sd, pre, w, d, lay, t, e)
    if "shared" in w:  # SharedExpertMLP: gate_weight is its own parameter, before its linears
        sd[pre + "mlp.shared_experts.gate_weight"] = w["shared_gate"]
        add_mlp(sd, pre + "mlp.shared_experts.", w["shared"], lay.tp, t)


def add_mlp(sd, prefix, weights, tp, t):
    """A TP-split SwiGLU MLP (dense, or the shared expert): fc1 = [gate_t; up_t], fc2 column chunk."""
    fc1, fc2 = expert_fc(weights, tp, t)
    sd[prefix + "linear_fc1.weight"] = fc1
    sd[prefix + "linear_fc1._extra_state"] = None
    sd[prefix + "linear_fc2.weight"] = fc2
    sd[prefix + "linear_fc2._extra_state"] = None


def expected_model(src, lay, chunks, t, p, e, v):
    """The OrderedDict one model chunk of rank (t, p, e) must hold, in module order."""
    d = src.dims
    vp = lay.vpp or 1
    Vp = padded_vocab(d.V, lay)
    sd = collections.OrderedDict()
    if p == 0 and v == 0:
        sd["embedding.word_embeddings.weight"] = split(pad_rows(src.embed(), Vp), 0, lay.tp, t)
    for i, g in enumerate(chunks[(p, v)]):
        add_layer(sd, i, src.layer(g), d, lay, t, e)
    if p == lay.pp - 1 and v == vp - 1:
        sd["decoder.final_layernorm.weight"] = src.final_norm()
        if lay.spec == "te":
            sd["decoder.final_layernorm._extra_state"] = None
        if not (d.tie and p == 0 and v == 0):  # tied and first: no weight allocated, the embedding serves
            sd["output_layer.weight"] = split(pad_rows(src.lm_head(), Vp), 0, lay.tp, t)
        sd["output_layer._extra_state"] = None
    if lay.dtype != "keep":
        target = TARGET_DTYPES[lay.dtype]
        for key, value in sd.items():
            if value is not None:
                sd[key] = value.to(target)
    return sd


def model_keys(lay):
    return ["model%d" % v for v in range(lay.vpp)] if lay.vpp else ["model"]


def all_ranks(lay):
    for p in range(lay.pp):
        for e in range(lay.ep):
            for t in range(lay.tp):
                yield t, p, e


def output_dtype(src, lay):
    return src.dtype if lay.dtype == "keep" else TARGET_DTYPES[lay.dtype]


def expected_args(src, lay):
    """Required fields and their values, then fields checked only when present."""
    d = src.dims
    required = {
        "num_layers": d.L,
        "hidden_size": d.H,
        "ffn_hidden_size": d.F,
        "num_attention_heads": d.np,
        "num_query_groups": d.ng,
        "kv_channels": d.hn,
        "padded_vocab_size": padded_vocab(d.V, lay),
        "tensor_model_parallel_size": lay.tp,
        "pipeline_model_parallel_size": lay.pp,
        "expert_model_parallel_size": lay.ep,
        "num_experts": d.E or None,
        "rotary_base": int(d.rope_theta),
        "normalization": "RMSNorm",
        "swiglu": True,
        "untie_embeddings_and_output_weights": not d.tie,
        "add_bias_linear": False,
        "virtual_pipeline_model_parallel_size": lay.vpp,
    }
    if d.E:
        required["moe_router_topk"] = d.topk
        required["moe_grouped_gemm"] = lay.experts != "sequential"
        required["moe_router_pre_softmax"] = not d.norm_topk
        required["moe_shared_expert_intermediate_size"] = d.Fs or None
        if d.Fs:
            required["moe_shared_expert_gate"] = True
    dtype = output_dtype(src, lay)
    optional = {
        "moe_ffn_hidden_size": d.F if d.E else None,
        "expert_tensor_parallel_size": lay.tp,
        "make_vocab_size_divisible_by": lay.divisible_by,
        "norm_epsilon": d.eps,
        "transformer_impl": "transformer_engine" if lay.spec == "te" else "local",
        "position_embedding_type": "rope",
        "rotary_interleaved": False,
        "add_qkv_bias": src.qkv_bias,
        "qk_layernorm": src.qk_norm,
        "apply_layernorm_1p": False,
        "decoder_first_pipeline_num_layers": lay.first,
        "decoder_last_pipeline_num_layers": lay.last,
        "num_layers_in_first_pipeline_stage": lay.first,
        "num_layers_in_last_pipeline_stage": lay.last,
        "bf16": dtype == torch.bfloat16,
        "fp16": dtype == torch.float16,
    }
    return required, optional


# ---------------------------------------------------------------------------------------------
# Checking a written checkpoint
# ---------------------------------------------------------------------------------------------


class Report:
    def __init__(self):
        self.problems = []
        self.files_checked = 0
        self.tensors_checked = 0

    def add(self, text):
        self.problems.append(text)

    def as_json(self):
        shown = self.problems[:MAX_PROBLEMS]
        if len(self.problems) > MAX_PROBLEMS:
            shown.append("... and %d more problems" % (len(self.problems) - MAX_PROBLEMS))
        return {
            "ok": not self.problems,
            "files_checked": self.files_checked,
            "tensors_checked": self.tensors_checked,
            "problems": shown,
        }


def torch_at_least(major, minor):
    parts = torch.__version__.split("+")[0].split(".")
    try:
        return (int(parts[0]), int(parts[1])) >= (major, minor)
    except (IndexError, ValueError):
        return False


def torch_load_unsafe(path):
    """Full unpickling (trusted files only: ours or our tool's)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:  # a torch without the weights_only parameter
        return torch.load(path, map_location="cpu")


def load_rank_file(path, rel, report):
    """On torch >= 2.6, first load as Megatron >= 0.14 does there (weights_only=True with
    argparse.Namespace allow-listed) and report a failure; then load with weights_only=False."""
    if torch_at_least(2, 6):
        torch.serialization.add_safe_globals([argparse.Namespace])
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure is a finding
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            report.add("%s: not loadable with weights_only=True and argparse.Namespace allow-listed: %s"
                       % (rel, first_line))
    return torch_load_unsafe(path)


def storage_bytes(t):
    if hasattr(t, "untyped_storage"):
        return t.untyped_storage().nbytes()
    return t.storage().size() * t.element_size()


def same_bits(a, b):
    if a.element_size() in BITS_VIEW and a.is_floating_point():
        view = BITS_VIEW[a.element_size()]
        return torch.equal(a.contiguous().view(view), b.contiguous().view(view))
    return torch.equal(a, b)


def check_tensor(where, actual, expected, report):
    if not isinstance(actual, torch.Tensor):
        report.add("%s: expected a tensor, found %s" % (where, type(actual).__name__))
        return
    report.tensors_checked += 1
    if list(actual.shape) != list(expected.shape):
        report.add("%s: shape %s, expected %s" % (where, list(actual.shape), list(expected.shape)))
        return
    if actual.dtype != expected.dtype:
        report.add("%s: dtype %s, expected %s" % (where, actual.dtype, expected.dtype))
        return
    if not same_bits(actual, expected):
        bad = (actual.float() != expected.float()).nonzero()
        first = bad[0].tolist() if len(bad) else "(bit pattern only)"
        report.add("%s: values differ (%d elements differ, first at %s)" % (where, len(bad), first))
    if not actual.is_contiguous():
        report.add("%s: tensor is not contiguous (stride %s)" % (where, list(actual.stride())))
    if actual.storage_offset() != 0 or storage_bytes(actual) != actual.numel() * actual.element_size():
        report.add("%s: tensor does not own exactly its storage (offset %d, storage %d bytes, data %d bytes)"
                   % (where, actual.storage_offset(), storage_bytes(actual), actual.numel() * actual.element_size()))


def check_key_order(where, actual_keys, expected_keys, report, missing="missing key", unexpected="unexpected key"):
    expected_set = set(expected_keys)
    actual_set = set(actual_keys)
    for key in expected_keys:
        if key not in actual_set:
            report.add("%s: %s %s" % (where, missing, key))
    for key in actual_keys:
        if key not in expected_set:
            report.add("%s: %s %s" % (where, unexpected, key))
    a = [k for k in actual_keys if k in expected_set]
    b = [k for k in expected_keys if k in actual_set]
    for position, (x, y) in enumerate(zip(a, b)):
        if x != y:
            report.add("%s: key order differs at position %d: found %s, expected %s (module order)"
                       % (where, position, x, y))
            break


def check_model(where, model, expected, report):
    if not isinstance(model, dict):
        report.add("%s: is a %s, expected an OrderedDict" % (where, type(model).__name__))
        return
    check_key_order(where, list(model.keys()), list(expected.keys()), report)
    for key, exp in expected.items():
        if key not in model:
            continue
        actual = model[key]
        if exp is None:
            if actual is not None:
                report.add("%s: %s: expected None, found %s" % (where, key, type(actual).__name__))
        else:
            check_tensor("%s: %s" % (where, key), actual, exp, report)


def plain_value(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(plain_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain_value(v) for k, v in value.items())
    return False


def check_args(rel, args, src, lay, report):
    if not isinstance(args, argparse.Namespace):
        report.add("%s: args is a %s, expected argparse.Namespace" % (rel, type(args).__name__))
        return
    fields = vars(args)
    required, optional = expected_args(src, lay)
    for name, want in required.items():
        if name not in fields:
            report.add("%s: args.%s is missing (expected %r)" % (rel, name, want))
        elif fields[name] != want or type(fields[name]) is not type(want):
            report.add("%s: args.%s = %r, expected %r" % (rel, name, fields[name], want))
    for name, want in optional.items():
        if name in fields and (fields[name] != want or (want is not None and type(fields[name]) is not type(want))):
            report.add("%s: args.%s = %r, expected %r" % (rel, name, fields[name], want))
    for name, value in fields.items():
        if not plain_value(value):
            report.add("%s: args.%s holds a %s; only plain Python values are safe to load"
                       % (rel, name, type(value).__name__))


def check_top_level(rel, state, lay, report):
    if not isinstance(state, dict):
        report.add("%s: top level is a %s, expected a dict" % (rel, type(state).__name__))
        return False
    wanted = model_keys(lay)
    for key in wanted + ["args", "checkpoint_version", "iteration"]:
        if key not in state:
            report.add("%s: top-level key %s is missing" % (rel, key))
    for key in state:
        if key not in TOP_LEVEL_ALLOWED and key not in wanted:
            report.add("%s: unexpected top-level key %s" % (rel, key))
    version = state.get("checkpoint_version")
    if version != 3.0 or not isinstance(version, float):
        report.add("%s: checkpoint_version = %r, expected 3.0 (float)" % (rel, version))
    iteration = state.get("iteration")
    if iteration != 0 or type(iteration) is not int:
        report.add("%s: iteration = %r, expected 0" % (rel, iteration))
    return True


def check_folders(mcore_dir, lay, report):
    tracker = os.path.join(mcore_dir, TRACKER)
    if not os.path.isfile(tracker):
        report.add("%s is missing" % TRACKER)
    else:
        with open(tracker, "rb") as f:
            content = f.read()
        if content != b"release":
            report.add("%s holds %r, expected exactly 'release'" % (TRACKER, content))
    release = os.path.join(mcore_dir, "release")
    if not os.path.isdir(release):
        report.add("release/ folder is missing")
        return
    wanted = {rank_folder(t, p, e, lay) for t, p, e in all_ranks(lay)}
    for name in sorted(set(os.listdir(release)) - wanted):
        report.add("release/%s: unexpected entry" % name)
    for name in sorted(wanted - set(os.listdir(release))):
        report.add("release/%s: rank folder is missing" % name)


def check_checkpoint(src, mcore_dir, lay):
    report = Report()
    check_divisibility(src.dims, lay)
    chunks = chunk_layers(src.dims.L, lay)
    check_folders(mcore_dir, lay, report)
    for t, p, e in all_ranks(lay):
        rel = "release/%s/%s" % (rank_folder(t, p, e, lay), RANK_FILE)
        path = os.path.join(mcore_dir, rel)
        if not os.path.isfile(path):
            report.add("%s: file is missing" % rel)
            continue
        state = load_rank_file(path, rel, report)
        report.files_checked += 1
        if not check_top_level(rel, state, lay, report):
            continue
        if "args" in state:
            check_args(rel, state["args"], src, lay, report)
        for v, model_key in enumerate(model_keys(lay)):
            if model_key in state:
                expected = expected_model(src, lay, chunks, t, p, e, v)
                check_model("%s: %s" % (rel, model_key), state[model_key], expected, report)
    return report


# ---------------------------------------------------------------------------------------------
# Writing the expected checkpoint (self-test)
# ---------------------------------------------------------------------------------------------


def expected_namespace(src, lay):
    required, optional = expected_args(src, lay)
    fields = dict(required)
    for name in ("moe_ffn_hidden_size", "expert_tensor_parallel_size", "make_vocab_size_divisible_by",
                 "norm_epsilon", "transformer_impl", "position_embedding_type", "bf16", "fp16"):
        fields[name] = optional[name]
    fields["num_layers_in_first_pipeline_stage"] = lay.first
    fields["num_layers_in_last_pipeline_stage"] = lay.last
    return argparse.Namespace(**fields)


def write_expected(src, mcore_dir, lay):
    chunks = chunk_layers(src.dims.L, lay)
    os.makedirs(os.path.join(mcore_dir, "release"), exist_ok=True)
    with open(os.path.join(mcore_dir, TRACKER), "w") as f:
        f.write("release")
    for t, p, e in all_ranks(lay):
        state = {"args": expected_namespace(src, lay), "checkpoint_version": 3.0, "iteration": 0}
        for v, model_key in enumerate(model_keys(lay)):
            model = expected_model(src, lay, chunks, t, p, e, v)
            for key, value in model.items():
                if value is not None:
                    model[key] = value.contiguous().clone()
            state[model_key] = model
        folder = os.path.join(mcore_dir, "release", rank_folder(t, p, e, lay))
        os.makedirs(folder, exist_ok=True)
        torch.save(state, os.path.join(folder, RANK_FILE))


# ---------------------------------------------------------------------------------------------
# Self-test: the oracle must pass its own output and catch planted mistakes
# ---------------------------------------------------------------------------------------------


def make_layout(tp=1, pp=1, ep=1, vpp=None, first=None, last=None, spec="local", experts="sequential",
                divisible_by=128, dtype="keep"):
    return Layout(tp, pp, ep, vpp, first, last, spec, experts, divisible_by, dtype)


def load_generator():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "fixtures", "make_tiny_mixtral.py")
    spec = importlib.util.spec_from_file_location("make_tiny_mixtral", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def edit_rank_file(path, change):
    state = torch_load_unsafe(path)
    change(state)
    torch.save(state, path)


def swap_gate_up(key):
    def change(state):
        w = state["model"][key]
        half = w.shape[0] // 2
        state["model"][key] = torch.cat([w[half:], w[:half]]).contiguous()

    return change


def exchange_experts(prefix, a, b):
    def change(state):
        m = state["model"]
        for part in ("linear_fc1.weight", "linear_fc2.weight"):
            ka = "%slocal_experts.%d.%s" % (prefix, a, part)
            kb = "%slocal_experts.%d.%s" % (prefix, b, part)
            m[ka], m[kb] = m[kb], m[ka]

    return change


def simple_change(fn):
    def change(state):
        fn(state)

    return change


def unfused_qkv(src, key):
    def change(state):
        w = src.layer(0)
        full = torch.cat([w["q"], w["k"], w["v"]], dim=0)
        state["model"][key] = full.contiguous().clone()

    return change


def column_concat_weight1(key, El):
    def change(state):
        w = state["model"][key]
        H = w.shape[0]
        blocks = w.reshape(El, H, -1)  # true memory layout: block j = fc1_j^T
        state["model"][key] = torch.cat(list(blocks), dim=1).contiguous()

    return change


def zero_padding(key, V):
    def change(state):
        w = state["model"][key].clone()
        w[V:] = 0
        state["model"][key] = w

    return change


def reorder(state):
    items = list(state["model"].items())
    items[1], items[2] = items[2], items[1]
    state["model"] = collections.OrderedDict(items)


def drop_key(key):
    return simple_change(lambda s: s["model"].pop(key))


def self_test_cases(src):
    """(name, layout, mutation or None, expected substring in some problem)."""
    base = make_layout(tp=2, pp=2, ep=2)
    r0 = "release/mp_rank_00_000_000/" + RANK_FILE
    r1 = "release/mp_rank_01_001_001/" + RANK_FILE
    px = "decoder.layers.1.mlp.experts."
    grouped = make_layout(tp=2, pp=1, ep=2, experts="grouped", dtype="fp32")
    return [
        ("local tp2 pp2 ep2", base, None, None),
        ("te te-grouped tp1 fp32", make_layout(spec="te", experts="te-grouped", dtype="fp32"), None, None),
        ("te sequential tp2 pp2 vpp2 ep4", make_layout(tp=2, pp=2, ep=4, vpp=2, spec="te"), None, None),
        ("local grouped tp4 pp3 first2 last1", make_layout(tp=4, pp=3, first=2, last=1, experts="grouped"),
         None, None),
        ("te te-grouped tp2 ep8 fp16 vpp2", make_layout(tp=2, pp=2, ep=8, vpp=2, spec="te", experts="te-grouped",
                                                        dtype="fp16"), None, None),
        ("gate/up halves swapped", base, (r1, swap_gate_up(px + "local_experts.1.linear_fc1.weight")),
         "decoder.layers.1.mlp.experts.local_experts.1.linear_fc1.weight: values differ"),
        ("two experts exchanged", base, (r0, exchange_experts(px, 0, 1)),
         "decoder.layers.1.mlp.experts.local_experts.0.linear_fc2.weight: values differ"),
        ("QKV not interleaved", make_layout(), ("release/mp_rank_00/" + RANK_FILE,
                                                unfused_qkv(src, "decoder.layers.0.self_attention.linear_qkv.weight")),
         "decoder.layers.0.self_attention.linear_qkv.weight: values differ"),
        ("weight1 as column concat", grouped, ("release/mp_rank_01_001/" + RANK_FILE,
                                               column_concat_weight1("decoder.layers.2.mlp.experts.weight1", 4)),
         "decoder.layers.2.mlp.experts.weight1: values differ"),
        ("padding rows zero", make_layout(), ("release/mp_rank_00/" + RANK_FILE,
                                              zero_padding("output_layer.weight", src.dims.V)),
         "output_layer.weight: values differ"),
        ("key missing", base, (r0, drop_key("decoder.layers.0.self_attention.linear_qkv._extra_state")),
         "missing key decoder.layers.0.self_attention.linear_qkv._extra_state"),
        ("keys reordered", base, (r0, simple_change(reorder)), "key order differs"),
        ("extra_state not None", base,
         (r0, simple_change(lambda s: s["model"].__setitem__("decoder.layers.0.self_attention.linear_proj._extra_state",
                                                             torch.empty(0, dtype=torch.uint8)))),
         "linear_proj._extra_state: expected None"),
        ("wrong rotary_base", base, (r0, simple_change(lambda s: setattr(s["args"], "rotary_base", 10000))),
         "args.rotary_base = 10000"),
        ("iteration missing", base, (r0, simple_change(lambda s: s.pop("iteration"))),
         "top-level key iteration is missing"),
        ("bf16 instead of keep(fp32) dtype", make_layout(dtype="fp32"),
         ("release/mp_rank_00/" + RANK_FILE, simple_change(
             lambda s: s["model"].__setitem__("decoder.final_layernorm.weight",
                                              s["model"]["decoder.final_layernorm.weight"].bfloat16()))),
         "decoder.final_layernorm.weight: dtype"),
        ("shared storage", base, (r1, simple_change(lambda s: s["model"].__setitem__(
            "output_layer.weight", torch.cat([s["model"]["output_layer.weight"]] * 2)[: s["model"]["output_layer.weight"].shape[0]]))),
         "output_layer.weight: tensor does not own exactly its storage"),
        ("tracker with newline", base, ("@tracker", None), "expected exactly 'release'"),
        ("rank folder missing", base, ("@rmfolder", None), "release/mp_rank_01_001_001: rank folder is missing"),
    ]


def run_self_test_case(src, tmp, index, case, report):
    name, lay, mutation, needle = case
    folder = os.path.join(tmp, "case%02d" % index)
    write_expected(src, folder, lay)
    if mutation is not None:
        target, change = mutation
        if target == "@tracker":
            with open(os.path.join(folder, TRACKER), "w") as f:
                f.write("release\n")
        elif target == "@rmfolder":
            shutil.rmtree(os.path.join(folder, "release", "mp_rank_01_001_001"))
        else:
            edit_rank_file(os.path.join(folder, target), change)
    result = check_checkpoint(src, folder, lay).as_json()
    report.files_checked += result["files_checked"]
    report.tensors_checked += result["tensors_checked"]
    if mutation is None:
        if not result["ok"]:
            report.add("self-test %r: the oracle rejects its own output: %s" % (name, result["problems"][:3]))
    elif result["ok"]:
        report.add("self-test %r: planted mistake not detected" % name)
    elif not any(needle in problem for problem in result["problems"]):
        report.add("self-test %r: no problem mentions %r; got %s" % (name, needle, result["problems"][:3]))


def check_fused_source_matches(gen, tmp, src, report):
    """The fused (transformers v5) fixture must describe the same model as the per-expert one."""
    fused_dir = os.path.join(tmp, "hf-fused")
    gen.generate(gen.parse_args([fused_dir, "--fused"]))
    fused = HfSource(fused_dir)
    if fused.dims != src.dims:
        report.add("self-test: fused fixture dims %s differ from %s" % (fused.dims, src.dims))
    for i in range(src.dims.L):
        a, b = src.layer(i), fused.layer(i)
        for e in range(src.dims.E):
            for n, (x, y) in enumerate(zip(a["experts"][e], b["experts"][e])):
                report.tensors_checked += 1
                if not torch.equal(x, y):
                    report.add("self-test: fused fixture layer %d expert %d w%d differs" % (i, e, (1, 2, 3)[n]))
        if not torch.equal(a["router"], b["router"]):
            report.add("self-test: fused fixture layer %d router differs" % i)
    return fused


def check_layer_placement(report):
    """Known answers: megatron-layout 3.1's VPP example, and an uneven split."""
    cases = [
        (8, make_layout(pp=2, vpp=2), {(0, 0): [0, 1], (0, 1): [4, 5], (1, 0): [2, 3], (1, 1): [6, 7]}),
        (4, make_layout(pp=3, first=2, last=1), {(0, 0): [0, 1], (1, 0): [2], (2, 0): [3]}),
        (6, make_layout(pp=3, last=2), {(0, 0): [0, 1], (1, 0): [2, 3], (2, 0): [4, 5]}),
        (5, make_layout(pp=2, first=1), {(0, 0): [0], (1, 0): [1, 2, 3, 4]}),
    ]
    for L, lay, want in cases:
        got = chunk_layers(L, lay)
        if got != want:
            report.add("self-test: layer placement for L=%d %s is %s, expected %s" % (L, lay, got, want))


def self_test():
    report = Report()
    check_layer_placement(report)
    gen = load_generator()
    tmp = tempfile.mkdtemp(prefix="reference_mcore_selftest_")
    try:
        hf_dir = os.path.join(tmp, "hf")
        gen.generate(gen.parse_args([hf_dir]))
        src = HfSource(hf_dir)
        fused = check_fused_source_matches(gen, tmp, src, report)
        cases = self_test_cases(src)
        for index, case in enumerate(cases):
            run_self_test_case(src, tmp, index, case, report)
        # A checkpoint written from the per-expert source must also pass against the fused source.
        folder = os.path.join(tmp, "cross")
        lay = make_layout(tp=2, pp=2, ep=2, spec="te", experts="te-grouped")
        write_expected(src, folder, lay)
        result = check_checkpoint(fused, folder, lay).as_json()
        if not result["ok"]:
            report.add("self-test: per-expert output rejected against the fused source: %s" % result["problems"][:3])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


# ---------------------------------------------------------------------------------------------
# Golden: compare the planned key lists with key lists taken from a real Megatron-Core model
# ---------------------------------------------------------------------------------------------

GOLDEN_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def golden_dims(cfg):
    H = cfg["hidden_size"]
    np_ = cfg["num_attention_heads"]
    return Dims(
        L=cfg["num_layers"],
        H=H,
        F=cfg.get("moe_ffn_hidden_size") or cfg["ffn_hidden_size"],
        np=np_,
        ng=cfg.get("num_query_groups") or np_,
        hn=cfg.get("kv_channels") or H // np_,
        E=cfg["num_experts"],
        topk=cfg["moe_router_topk"],
        V=cfg["true_vocab_size"],
        rope_theta=cfg["rotary_base"],
        eps=cfg["norm_epsilon"],
    )


def golden_layout(cfg):
    return make_layout(
        tp=cfg["tensor_model_parallel_size"],
        pp=cfg["pipeline_model_parallel_size"],
        ep=cfg["expert_model_parallel_size"],
        first=cfg.get("decoder_first_pipeline_num_layers"),
        last=cfg.get("decoder_last_pipeline_num_layers"),
        spec="te" if cfg.get("transformer_impl") == "transformer_engine" else "local",
        experts="grouped" if cfg.get("moe_grouped_gemm") else "sequential",
        divisible_by=cfg["make_vocab_size_divisible_by"],
    )


def compare_golden_file(path, report):
    with open(path) as f:
        gold = json.load(f)
    cfg = gold["config"]
    name = os.path.basename(path)
    lay = golden_layout(cfg)
    src = ZeroSource(golden_dims(cfg), GOLDEN_DTYPES[cfg["params_dtype"]])
    rank = gold["rank"]
    t, p, e = rank["tp"], rank["pp"], rank["ep"]
    report.files_checked += 1
    legacy = "release/%s/%s" % (rank_folder(t, p, e, lay), RANK_FILE)
    if legacy != gold["legacy_path"]:
        report.add("%s: planned path %s, golden %s" % (name, legacy, gold["legacy_path"]))
    if padded_vocab(src.dims.V, lay) != cfg["padded_vocab_size"]:
        report.add("%s: planned padded vocab %d, golden %d" % (name, padded_vocab(src.dims.V, lay),
                                                                cfg["padded_vocab_size"]))
    expected = expected_model(src, lay, chunk_layers(src.dims.L, lay), t, p, e, 0)
    planned = [(k, None if v is None else list(v.shape), None if v is None else str(v.dtype).replace("torch.", ""))
               for k, v in expected.items()]
    golden = [(x["key"], x.get("shape"), x.get("dtype")) for x in gold["state_dict"]]
    for x in gold["state_dict"]:
        if "shape" not in x and x.get("type") != "NoneType":
            report.add("%s: %s: golden entry is a %s, the oracle only plans tensors and None"
                       % (name, x["key"], x.get("type")))
    check_key_order(name, [k for k, _, _ in planned], [k for k, _, _ in golden], report,
                    missing="golden key not planned by the oracle:", unexpected="oracle plans a key golden lacks:")
    golden_by_key = {k: (s, d) for k, s, d in golden}
    for key, shape, dtype in planned:
        report.tensors_checked += 1
        if key in golden_by_key and golden_by_key[key] != (shape, dtype):
            report.add("%s: %s: planned %s %s, golden %s %s" % (name, key, shape, dtype, *golden_by_key[key]))


def golden_mode(golden_dir):
    report = Report()
    files = sorted(f for f in os.listdir(golden_dir) if f.startswith("keys_") and f.endswith(".json"))
    if not files:
        raise InputError("%s: no keys_*.json files" % golden_dir)
    for file_name in files:
        compare_golden_file(os.path.join(golden_dir, file_name), report)
    return report


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Check a Megatron-Core legacy checkpoint against HF Mixtral.")
    parser.add_argument("hf_dir", nargs="?", metavar="HF_DIR")
    parser.add_argument("mcore_dir", nargs="?", metavar="MCORE_DIR")
    parser.add_argument("--tp", type=int, default=1)
    parser.add_argument("--pp", type=int, default=1)
    parser.add_argument("--ep", type=int, default=1)
    parser.add_argument("--vpp", type=int, default=None)
    parser.add_argument("--pp-first-layers", type=int, default=None)
    parser.add_argument("--pp-last-layers", type=int, default=None)
    parser.add_argument("--spec", choices=["te", "local"], default="te")
    parser.add_argument("--experts", choices=["sequential", "te-grouped", "grouped"], default="sequential")
    parser.add_argument("--divisible-by", type=int, default=128)
    parser.add_argument("--dtype", choices=["keep", "bf16", "fp16", "fp32"], default="keep")
    parser.add_argument("--self-test", action="store_true", help="check the oracle against planted mistakes")
    parser.add_argument("--golden", metavar="GOLDEN_DIR", help="compare planned key lists with golden/")
    args = parser.parse_args(argv)
    modes = sum([args.self_test, args.golden is not None, args.hf_dir is not None])
    if modes != 1 or (args.hf_dir is not None and args.mcore_dir is None):
        parser.error("give HF_DIR MCORE_DIR, or --self-test, or --golden GOLDEN_DIR")
    for name in ("tp", "pp", "ep", "divisible_by"):
        if getattr(args, name) < 1:
            parser.error("--%s must be >= 1" % name.replace("_", "-"))
    if args.vpp is not None and args.vpp < 1:
        parser.error("--vpp must be >= 1")
    return args


def main(argv):
    args = parse_args(argv)
    try:
        if args.self_test:
            report = self_test()
        elif args.golden is not None:
            report = golden_mode(args.golden)
        else:
            lay = Layout(args.tp, args.pp, args.ep, args.vpp, args.pp_first_layers, args.pp_last_layers,
                         args.spec, args.experts, args.divisible_by, args.dtype)
            report = check_checkpoint(HfSource(args.hf_dir), args.mcore_dir, lay)
    except InputError as exc:
        print(json.dumps({"ok": False, "files_checked": 0, "tensors_checked": 0,
                          "problems": ["input error: %s" % exc]}))
        return 2
    result = report.as_json()
    print(json.dumps(result, indent=1))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
