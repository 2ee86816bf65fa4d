import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openSafetensorsFile, readTensorRange } from "../../../src/formats/safetensors/reader.js";
import { serializeSafetensorsHeader, writeSafetensors, type TensorPayload } from "../../../src/formats/safetensors/writer.js";
import type { Dtype, TensorSpec } from "../../../src/model/tensor.js";
import { runPython } from "../../support/python.js";
import { hex } from "../../support/safetensors-builders.js";
import { makeTempDir } from "../../support/tmpdir.js";

/**
 * Writes a safetensors file from real torch tensors the way the reference writer does
 * (dtype descending in the enum order, then name; "__metadata__" first; compact JSON; space
 * padding), with torch + struct + json only, and prints each tensor's bytes as torch sees them.
 */
const TORCH_WRITER = String.raw`
import json, struct, sys, torch
torch.manual_seed(0)
tensors = {
    "model.embed_tokens.weight": torch.randn(4, 3).to(torch.bfloat16),
    "half": torch.randn(5).half(),
    "f32.2d": torch.randn(2, 3),
    "f64": torch.randn(3, dtype=torch.float64),
    "ids": torch.arange(-3, 3, dtype=torch.int64).reshape(2, 3) * (1 << 40),
    "i32": torch.arange(-2, 2, dtype=torch.int32),
    "i16": torch.tensor([-300, 7], dtype=torch.int16),
    "i8": torch.tensor([-128, 127], dtype=torch.int8),
    "u8": torch.arange(0, 250, 7, dtype=torch.uint8),
    "mask": torch.tensor([True, False, True]),
    "scalar": torch.tensor(3.25),
    "scalar.bf16": torch.tensor(-1.5, dtype=torch.bfloat16),
    "empty": torch.zeros(0, 4, dtype=torch.float16),
    "transposed": torch.randn(3, 2).t(),
    "é.weight": torch.ones(2, dtype=torch.bfloat16),
}
ORDER = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ",
         "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"]
DT = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32", torch.float64: "F64",
      torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
      torch.uint8: "U8", torch.bool: "BOOL"}

def raw(t):
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()

items = sorted(tensors.items(), key=lambda kv: (-ORDER.index(DT[kv[1].dtype]), kv[0]))
header = {"__metadata__": {"format": "pt"}}
data = b""
for name, t in items:
    b = raw(t)
    header[name] = {"dtype": DT[t.dtype], "shape": list(t.shape), "data_offsets": [len(data), len(data) + len(b)]}
    data += b
js = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
js += b" " * ((8 - len(js) % 8) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(js)) + js + data)
print(json.dumps([{"name": n, "dtype": DT[t.dtype], "shape": list(t.shape), "hex": raw(t).hex()} for n, t in items]))
`;

/** Parses a file with json + struct only and checks every tensor against the values sent on stdin. */
const TORCH_CHECKER = String.raw`
import json, struct, sys, torch
expected = json.loads(sys.stdin.read())
buf = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", buf[:8])[0]
assert (8 + n) % 8 == 0, "data buffer not 8-aligned"
assert buf[8:9] == b"{", "header must start with {"
header = json.loads(buf[8:8 + n].decode("utf-8"))
assert list(header)[0] == "__metadata__", list(header)
assert header.pop("__metadata__") == {"format": "pt"}
assert set(header) == set(expected), (sorted(header), sorted(expected))
DT = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32, "F64": torch.float64,
      "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
      "U8": torch.uint8, "BOOL": torch.bool}
end = 0
for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
    b, e = info["data_offsets"]
    assert b == end, (name, b, end)
    end = e
    want = expected[name]
    assert info["dtype"] == want["dtype"] and info["shape"] == want["shape"], (name, info, want)
    dt = DT[info["dtype"]]
    chunk = bytearray(buf[8 + n + b:8 + n + e])
    got = (torch.frombuffer(chunk, dtype=dt) if len(chunk) else torch.empty(0, dtype=dt)).reshape(info["shape"])
    ref = torch.tensor(want["values"], dtype=dt).reshape(want["shape"])
    assert torch.equal(got, ref), (name, got, ref)
assert 8 + n + end == len(buf), "trailing bytes"
print("ok", len(header))
`;

interface TorchTensor {
  name: string;
  dtype: Dtype;
  shape: number[];
  hex: string;
}

describe("interop with real torch", () => {
  it("reads a file written from torch tensors, every tensor equal to torch's bytes", async () => {
    const path = join(await makeTempDir(), "torch.safetensors");
    const expected = JSON.parse(runPython(TORCH_WRITER, [path])) as TorchTensor[];
    const file = await openSafetensorsFile(path);
    try {
      expect(file.metadata).toEqual({ format: "pt" });
      expect(file.tensors.map((t) => t.name).filter((n) => n !== "empty")).toEqual(expected.map((t) => t.name).filter((n) => n !== "empty"));
      for (const want of expected) {
        const t = file.tensor(want.name);
        expect(t, want.name).toMatchObject({ dtype: want.dtype, shape: want.shape });
        if (t !== undefined) {
          expect(hex(await readTensorRange(file.source, t, 0, t.byteLength)), want.name).toBe(want.hex);
        }
      }
      // Our serializer, given the same order, writes the very same header bytes.
      const specs: TensorSpec[] = expected.map(({ name, dtype, shape }) => ({ name, dtype, shape }));
      const { header } = serializeSafetensorsHeader(specs, { format: "pt" });
      expect(hex(header)).toBe(hex((await readFile(path)).subarray(0, header.byteLength)));
      expect(file.headerBytes).toBe(header.byteLength);
    } finally {
      await file.close();
    }
  });

  it("writes a file that torch reads back value for value", async () => {
    const path = join(await makeTempDir(), "ours.safetensors");
    const cases = tensorsWithValues();
    await writeSafetensors(
      path,
      cases.map(({ spec, bytes }): TensorPayload => ({ spec, data: () => oneChunk(bytes) })),
    );
    const expected = Object.fromEntries(cases.map(({ spec, values }) => [spec.name, { dtype: spec.dtype, shape: spec.shape, values }]));
    expect(runPython(TORCH_CHECKER, [path], JSON.stringify(expected)).trim()).toBe(`ok ${cases.length}`);
  });
});

async function* oneChunk(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

interface Case {
  spec: TensorSpec;
  values: (number | boolean)[];
  bytes: Uint8Array;
}

/** bfloat16 bits: the top half of float32 (exact for the values used here). */
function bf16(values: number[]): Uint8Array {
  const f32 = new Uint32Array(new Float32Array(values).buffer);
  return new Uint8Array(new Uint16Array([...f32].map((bits) => bits >>> 16)).buffer);
}

function tensorsWithValues(): Case[] {
  const bytesOf = (view: ArrayBufferView): Uint8Array => new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const ints64 = [-(2 ** 40), -1, 0, 1, 2 ** 40, 2 ** 53 - 1];
  return [
    { spec: { name: "w.bf16", dtype: "BF16", shape: [2, 3] }, values: [1.5, -2, 0.5, 3, 1024, -0.25], bytes: bf16([1.5, -2, 0.5, 3, 1024, -0.25]) },
    { spec: { name: "w.f16", dtype: "F16", shape: [4] }, values: [1, -2, 0.5, 65504], bytes: bytesOf(new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff])) },
    { spec: { name: "w.f32", dtype: "F32", shape: [3, 1] }, values: [0.1, -7.25, 1e30], bytes: bytesOf(new Float32Array([0.1, -7.25, 1e30])) },
    { spec: { name: "w.f64", dtype: "F64", shape: [] }, values: [2.5], bytes: bytesOf(new Float64Array([2.5])) },
    { spec: { name: "ids", dtype: "I64", shape: [2, 3] }, values: ints64, bytes: bytesOf(new BigInt64Array(ints64.map(BigInt))) },
    { spec: { name: "i32", dtype: "I32", shape: [2] }, values: [-5, 2 ** 31 - 1], bytes: bytesOf(new Int32Array([-5, 2 ** 31 - 1])) },
    { spec: { name: "i16", dtype: "I16", shape: [2] }, values: [-300, 7], bytes: bytesOf(new Int16Array([-300, 7])) },
    { spec: { name: "i8", dtype: "I8", shape: [2] }, values: [-128, 127], bytes: bytesOf(new Int8Array([-128, 127])) },
    { spec: { name: "u8", dtype: "U8", shape: [3] }, values: [0, 128, 255], bytes: new Uint8Array([0, 128, 255]) },
    { spec: { name: "mask", dtype: "BOOL", shape: [3] }, values: [true, false, true], bytes: new Uint8Array([1, 0, 1]) },
    { spec: { name: "empty", dtype: "F16", shape: [0, 4] }, values: [], bytes: new Uint8Array(0) },
    { spec: { name: "0", dtype: "F32", shape: [1] }, values: [42], bytes: bytesOf(new Float32Array([42])) },
  ];
}
