"""Writes hostile and corrupt .pt files (zip + pickle) into a folder, one per case, with
plain Python (no torch needed): each file is named after the error code it must raise."""
import io, os, pickle, struct, sys, zipfile

out = sys.argv[1]
marker = sys.argv[2]
os.makedirs(out, exist_ok=True)


def pt(name, records, prefix="archive"):
    with zipfile.ZipFile(os.path.join(out, name), "w", compression=zipfile.ZIP_STORED) as z:
        for rec, data in records:
            z.writestr(f"{prefix}/{rec}", data)


def proto2(body):
    return b"\x80\x02" + body + b"."


class Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


good = proto2(b"}q\x00X\x01\x00\x00\x00aq\x01K\x01s.")[:-1]
pt("valid.pt", [("data.pkl", pickle.dumps({"a": 1}, protocol=2)), ("version", b"3\n")])
import os as _os, subprocess as _sp, builtins as _b
touch = f"import pathlib; pathlib.Path({marker!r}).write_text('pwned')"
pt("forbidden-os-system.pt", [("data.pkl", pickle.dumps(Reduce(_os.system, (f"touch {marker}",)), protocol=2)), ("version", b"3\n")])
pt("forbidden-eval.pt", [("data.pkl", pickle.dumps(Reduce(_b.exec, (touch,)), protocol=2)), ("version", b"3\n")])
pt("forbidden-subprocess.pt", [("data.pkl", pickle.dumps(Reduce(_sp.Popen, (["touch", marker],)), protocol=2)), ("version", b"3\n")])
pt("forbidden-torch-function.pt", [("data.pkl", proto2(b"ctorch\nload\n(X\x03\x00\x00\x00/x/tR")), ("version", b"3\n")])
pt("bomb-deep-nesting.pt", [("data.pkl", b"\x80\x02" + b"(" * 100000 + b"l" * 100000 + b"."), ("version", b"3\n")])
pt("bomb-marks.pt", [("data.pkl", b"\x80\x02" + b"(" * 200000 + b"."), ("version", b"3\n")])
pt("bomb-memo-index.pt", [("data.pkl", proto2(b"N" + b"r" + struct.pack("<I", 0xFFFFFFF0) + b"j" + struct.pack("<I", 0xFFFFFFF0))), ("version", b"3\n")])
pt("bomb-huge-string.pt", [("data.pkl", b"\x80\x02X" + struct.pack("<I", 0x7FFFFFF0) + b"abc"), ("version", b"3\n")])
pt("bomb-huge-long.pt", [("data.pkl", b"\x80\x02\x8b" + struct.pack("<I", 0x7FFFFFF0) + b"\x01"), ("version", b"3\n")])
pt("truncated-pickle.pt", [("data.pkl", pickle.dumps({"a": [1, 2, 3]}, protocol=2)[:-4]), ("version", b"3\n")])
pt("unknown-opcode.pt", [("data.pkl", b"\x80\x02\xff."), ("version", b"3\n")])
pt("missing-data-pkl.pt", [("version", b"3\n")])
pt("missing-version.pt", [("data.pkl", pickle.dumps({"a": 1}, protocol=2))])
pt("bad-version.pt", [("data.pkl", pickle.dumps({"a": 1}, protocol=2)), ("version", b"11\n")])
storage = proto2(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x04\x85K\x01\x85\x89ccollections\nOrderedDict\n)Rtr")
pt("missing-storage.pt", [("data.pkl", storage), ("version", b"3\n")])
pt("storage-size-mismatch.pt", [("data.pkl", storage), ("data/0", b"\x00" * 12), ("version", b"3\n")])
with zipfile.ZipFile(os.path.join(out, "two-prefixes.pt"), "w") as z:
    z.writestr("a/data.pkl", pickle.dumps({"a": 1}, protocol=2))
    z.writestr("b/version", b"3\n")
raw = open(os.path.join(out, "valid.pt"), "rb").read()
open(os.path.join(out, "no-eocd.pt"), "wb").write(raw[:-22] + b"\x00" * 22)
open(os.path.join(out, "truncated-zip.pt"), "wb").write(raw[: len(raw) // 2])
eocd = raw.rfind(b"PK\x05\x06")
cd_bad = bytearray(raw)
struct.pack_into("<I", cd_bad, eocd + 16, len(raw) + 1000)
open(os.path.join(out, "cd-offset-past-end.pt"), "wb").write(bytes(cd_bad))
local_bad = bytearray(raw)
local_bad[0:4] = b"PK\x09\x09"
open(os.path.join(out, "bad-local-header.pt"), "wb").write(bytes(local_bad))
open(os.path.join(out, "not-a-zip.pt"), "wb").write(b"\x80\x02}q\x00.")
