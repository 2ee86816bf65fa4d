"""A HuggingFace model folder: config.json and safetensors shards, read one tensor at a time.

Safetensors is read with json + struct + torch.frombuffer (no `safetensors` package): an 8-byte
little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}},
then the data buffer; offsets are relative to byte 8 + N. Only the bytes of the tensor asked for
are read, so a caller that asks for one layer's tensors holds one layer's weights.
"""

import json
import os
import struct

import torch

from hf_config import load_config
from verify_errors import VerifyError

DTYPES = {
    "BF16": (torch.bfloat16, 2), "F16": (torch.float16, 2), "F32": (torch.float32, 4), "F64": (torch.float64, 8),
    "I64": (torch.int64, 8), "I32": (torch.int32, 4), "I16": (torch.int16, 2), "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1), "BOOL": (torch.bool, 1),
}
MAX_HEADER_BYTES = 100_000_000


def read_bytes(path, offset, length):
    with open(path, "rb") as f:
        f.seek(offset)
        data = bytearray(length)
        view = memoryview(data)
        got = 0
        while got < length:
            n = f.readinto(view[got:])
            if not n:
                raise VerifyError("verify.hf-truncated", f"{path}: wanted {length} bytes at offset {offset}, the file ended after {got}")
            got += n
        return data


def tensor_from_bytes(data, dtype, shape):
    numel = 1
    for d in shape:
        numel *= d
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(data, dtype=dtype, count=numel).reshape(shape)


class SafetensorsFile:
    def __init__(self, path):
        self.path = path
        size = os.path.getsize(path)
        head = read_bytes(path, 0, 8)
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise VerifyError("verify.hf-header", f"{path}: header length {n} does not fit the file ({size} bytes)")
        header = json.loads(read_bytes(path, 8, n).decode("utf-8"))
        header.pop("__metadata__", None)
        self.base = 8 + n
        self.entries = header
        for name, e in header.items():
            begin, end = e["data_offsets"]
            if e["dtype"] not in DTYPES or self.base + end > size or begin > end:
                raise VerifyError("verify.hf-header", f"{path}: tensor {name!r} has dtype {e['dtype']} / offsets {begin}..{end} that this reader cannot use")

    def tensor(self, name, index=None):
        """The tensor, or with `index` only its slice [index] along dim 0 (one expert of a fused tensor)."""
        e = self.entries[name]
        begin, end = e["data_offsets"]
        dtype, size = DTYPES[e["dtype"]]
        shape = list(e["shape"])
        numel = 1
        for d in shape:
            numel *= d
        if numel * size != end - begin:
            raise VerifyError("verify.hf-header", f"{self.path}: tensor {name!r} has {end - begin} bytes for shape {shape} {e['dtype']}")
        if index is None:
            return tensor_from_bytes(read_bytes(self.path, self.base + begin, end - begin), dtype, shape)
        row = (end - begin) // shape[0]
        return tensor_from_bytes(read_bytes(self.path, self.base + begin + index * row, row), dtype, shape[1:])


class HfFolder:
    """Tensor name -> shard file, from model.safetensors.index.json or the *.safetensors files present."""

    def __init__(self, folder):
        self.folder = folder
        self.config = load_config(folder)
        self.files = {}
        self.where = {}
        index = os.path.join(folder, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index, encoding="utf-8") as f:
                names = sorted(set(json.load(f)["weight_map"].values()))
        else:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".safetensors"))
        if not names:
            raise VerifyError("verify.hf-missing", f"{folder}: no *.safetensors files")
        for n in names:
            f = SafetensorsFile(os.path.join(folder, n))
            self.files[n] = f
            for t in f.entries:
                if t in self.where:
                    raise VerifyError("verify.hf-duplicate", f"{folder}: tensor {t!r} is in {self.where[t].path} and {f.path}")
                self.where[t] = f
        # transformers 5 stores each layer's experts as two 3-D tensors (mlp.experts.gate_up_proj / down_proj)
        self.fused = any(t.endswith(".mlp.experts.gate_up_proj") for t in self.where)
        dense = not any(".mlp.experts." in t or ".block_sparse_moe." in t for t in self.where)
        self.layout = "dense" if dense else "fused" if self.fused else "per-expert"

    def has(self, name):
        return name in self.where

    def tensor(self, name, index=None):
        f = self.where.get(name)
        if f is None:
            raise VerifyError("verify.hf-missing", f"{self.folder}: no tensor {name!r} in its safetensors files")
        return f.tensor(name, index)

    def weight_dtype(self):
        name = "model.embed_tokens.weight"
        f = self.where.get(name)
        return f.entries[name]["dtype"] if f else "?"

    def total_bytes(self):
        return sum(e["data_offsets"][1] - e["data_offsets"][0] for f in self.files.values() for e in f.entries.values())

    def total_params(self):
        total = 0
        for f in self.files.values():
            for e in f.entries.values():
                n = 1
                for d in e["shape"]:
                    n *= d
                total += n
        return total
