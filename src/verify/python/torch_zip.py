"""Lazy, restricted reader for torch.save zip checkpoints (model_optim_rng.pt), any torch version.

Instead of torch.load (which reads every storage into memory on torch < 2.1 and runs arbitrary
pickle code on every version) this unpickles `<archive>/data.pkl` with an allow-list and turns each
tensor into a LazyTensor: (storage record, dtype, offset, size, stride). `LazyTensor.load()` reads
only that tensor's byte span of `<archive>/data/<key>` with a positional read, so a caller that
loads one layer's tensors holds one layer's weights (the same effect as torch.load(mmap=True) on
torch >= 2.1, without needing it). Records are stored uncompressed by torch; their data starts
after the 30-byte local header + name + extra field. Unknown globals (Megatron enums, numpy
arrays in rng state, io.BytesIO extra states, ...) become inert Opaque objects.
"""

import argparse
import collections
import pickle
import struct
import zipfile

import torch

from verify_errors import VerifyError

STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "UntypedStorage": torch.uint8,
}
SAFE = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("argparse", "Namespace"): argparse.Namespace,
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "slice"): slice,
    ("builtins", "complex"): complex, ("builtins", "bytearray"): bytearray,
}


class Opaque:
    """Whatever the allow-list does not know: accepts any construction, holds nothing useful."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state

    def __call__(self, *args, **kwargs):
        return Opaque(*args)


def opaque_class(module, name):
    return type(f"Opaque[{module}.{name}]", (Opaque,), {"__new__": lambda cls, *a, **k: object.__new__(cls)})


class StorageType:
    def __init__(self, dtype):
        self.dtype = dtype


class LazyStorage:
    def __init__(self, archive, key, dtype, numel):
        self.archive, self.key, self.dtype, self.numel = archive, key, dtype, numel


class LazyTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(size), tuple(stride)

    def load(self):
        s = self.storage
        item = torch.tensor([], dtype=s.dtype).element_size()
        numel = 1
        for d in self.shape:
            numel *= d
        if numel == 0:
            return torch.empty(self.shape, dtype=s.dtype)
        span = 1 + sum((d - 1) * st for d, st in zip(self.shape, self.stride))
        if self.offset + span > s.numel:
            raise VerifyError("verify.rank-file", f"{s.archive.path}: a tensor of shape {list(self.shape)} runs past its storage {s.key}")
        data = s.archive.read_record(s.key, self.offset * item, span * item)
        flat = torch.frombuffer(data, dtype=s.dtype, count=span)
        return torch.as_strided(flat, self.shape, self.stride).clone() if span != numel or not self.contiguous() else flat.view(self.shape)

    def block(self, j, blocks):
        """Block j of `blocks` equal parts of a contiguous tensor's memory, as a flat tensor (read alone)."""
        numel = 1
        for d in self.shape:
            numel *= d
        if not self.contiguous() or numel % blocks:
            raise VerifyError("verify.rank-file", f"{self.storage.archive.path}: a tensor of shape {list(self.shape)} cannot be read as {blocks} blocks")
        per = numel // blocks
        return LazyTensor(self.storage, self.offset + j * per, (per,), (1,)).load()

    def contiguous(self):
        expect = 1
        for d, st in reversed(list(zip(self.shape, self.stride))):
            if d != 1 and st != expect:
                return False
            expect *= d
        return True


def rebuild_tensor(storage, offset, size, stride, *_rest):
    return LazyTensor(storage, offset, size, stride)


def rebuild_parameter(data, *_rest):
    return data


def rebuild_from_type(func, _new_type, args, _state):
    return func(*args)


TORCH_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type,
}


class Archive:
    def __init__(self, path):
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as e:
            raise VerifyError("verify.rank-file", f"{path}: not a torch zip checkpoint ({e})") from e
        names = self.zip.namelist()
        pkl = next((n for n in names if n.endswith("data.pkl") and n.count("/") == 1), None)
        if pkl is None:
            raise VerifyError("verify.rank-file", f"{path}: no <archive>/data.pkl record")
        self.prefix = pkl[: -len("data.pkl")]
        order = self.prefix + "byteorder"
        if order in names and self.zip.read(order).strip() not in (b"little", b""):
            raise VerifyError("verify.rank-file", f"{path}: big-endian checkpoints are not supported")
        self.root = Unpickler(self, self.zip.read(pkl)).load()

    def read_record(self, key, offset, length):
        info = self.zip.getinfo(f"{self.prefix}data/{key}")
        if info.compress_type != zipfile.ZIP_STORED:
            return bytearray(self.zip.read(info)[offset : offset + length])
        with open(self.path, "rb") as f:
            f.seek(info.header_offset)
            head = f.read(30)
            if head[:4] != b"PK\x03\x04":
                raise VerifyError("verify.rank-file", f"{self.path}: bad local header for record data/{key}")
            name_len, extra_len = struct.unpack("<HH", head[26:30])
            if offset + length > info.file_size:
                raise VerifyError("verify.rank-file", f"{self.path}: record data/{key} has {info.file_size} bytes, wanted {offset + length}")
            f.seek(info.header_offset + 30 + name_len + extra_len + offset)
            data = bytearray(length)
            if f.readinto(data) != length:
                raise VerifyError("verify.rank-file", f"{self.path}: record data/{key} is truncated")
            return data


class Unpickler(pickle.Unpickler):
    def __init__(self, archive, data):
        import io

        super().__init__(io.BytesIO(data))
        self.archive = archive

    def find_class(self, module, name):
        if (module, name) in SAFE:
            return SAFE[(module, name)]
        if (module, name) in TORCH_GLOBALS:
            return TORCH_GLOBALS[(module, name)]
        if module in ("torch", "torch.storage") and name in STORAGE_DTYPES:
            return StorageType(STORAGE_DTYPES[name])
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        return opaque_class(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise VerifyError("verify.rank-file", f"{self.archive.path}: unknown persistent id {pid!r}")
        _, stype, key, _location, numel = pid
        dtype = stype.dtype if isinstance(stype, StorageType) else torch.uint8
        return LazyStorage(self.archive, key, dtype, numel)
