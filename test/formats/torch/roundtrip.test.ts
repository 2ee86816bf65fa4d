import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { FileSource } from "../../../src/formats/io/file-source.js";
import { readTensorBytes, readTorchCheckpoint, readTorchCheckpointFile } from "../../../src/formats/torch/checkpoint-reader.js";
import { writeTorchCheckpoint } from "../../../src/formats/torch/checkpoint-writer.js";
import { PyDict, PyGlobal, PyOrderedDict, TensorOut, TensorRef, contiguousStrides } from "../../../src/formats/torch/pickle/values.js";
import { DTYPE_BYTES, type Dtype } from "../../../src/model/tensor.js";
import { makeTempDir } from "../../support/tmpdir.js";
import { storageOf, tensorOf } from "../../support/torch-builders.js";

/** mulberry32: a small seeded PRNG, so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Case {
  readonly name: string;
  readonly tensor: TensorOut;
  readonly expected: Uint8Array;
}

/** Row-major bytes of a strided view, computed independently of the reader (multi-index walk). */
function expectedBytes(storage: Uint8Array, itemsize: number, shape: number[], stride: number[], offset: number): Uint8Array {
  const numel = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(numel * itemsize);
  for (let n = 0; n < numel; n += 1) {
    let rest = n;
    let element = offset;
    for (let d = shape.length - 1; d >= 0; d -= 1) {
      const size = shape[d] ?? 1;
      element += (rest % size) * (stride[d] ?? 0);
      rest = Math.floor(rest / size);
    }
    out.set(storage.subarray(element * itemsize, (element + 1) * itemsize), n * itemsize);
  }
  return out;
}

function randomCase(rand: () => number, i: number): Case {
  const dtypes = Object.keys(DTYPE_BYTES) as Dtype[];
  const dtype = dtypes[Math.floor(rand() * dtypes.length)] ?? "F32";
  const itemsize = DTYPE_BYTES[dtype];
  const rank = Math.floor(rand() * 4);
  const shape = Array.from({ length: rank }, () => Math.floor(rand() * 4) + (rand() < 0.1 ? 0 : 1));
  let stride = contiguousStrides(shape);
  if (rank >= 2 && rand() < 0.5) {
    // a transposed view of a contiguous buffer
    const perm = [...shape.keys()].reverse();
    const base = contiguousStrides(perm.map((p) => shape[p] ?? 1));
    stride = shape.map((_, d) => base[perm.indexOf(d)] ?? 1);
  } else if (rank >= 1 && rand() < 0.5) {
    stride = stride.map((s) => s * 2);
  }
  const offset = Math.floor(rand() * 3);
  const span = shape.some((s) => s === 0) ? 0 : shape.reduce((acc, s, d) => acc + (s - 1) * (stride[d] ?? 0), 0) + 1;
  const numel = offset + span + Math.floor(rand() * 3);
  const bytes = Uint8Array.from({ length: numel * itemsize }, () => Math.floor(rand() * 256));
  const tensor = new TensorOut(storageOf(dtype, numel, bytes, 7), shape, stride, offset);
  return { name: `t${i}_${dtype}`, tensor, expected: expectedBytes(bytes, itemsize, shape, stride, offset) };
}

describe("our writer -> our reader", () => {
  test("seeded round trips over every Dtype (v2 and v3 rebuilds), shapes, strides, offsets and record sets", async () => {
    const dir = await makeTempDir();
    for (const [seed, options] of [
      [1, {}],
      [2, { recordSet: "torch1.13" as const }],
      [3, { forceZip64: true }],
    ] as const) {
      const rand = prng(seed);
      const cases = Array.from({ length: 60 }, (_, i) => randomCase(rand, i));
      const root = new PyOrderedDict();
      for (const c of cases) {
        root.set(c.name, c.tensor);
      }
      const path = join(dir, `rt${seed}.pt`);
      await writeTorchCheckpoint(path, root, options);
      const source = await FileSource.open(path);
      try {
        const ck = await readTorchCheckpoint(source);
        const back = ck.root instanceof PyDict ? ck.root : new PyDict();
        for (const c of cases) {
          const t = back.get(c.name);
          expect(t, c.name).toBeInstanceOf(TensorRef);
          if (t instanceof TensorRef) {
            expect([t.dtype, t.shape, t.stride, t.storageOffset], c.name).toEqual([c.tensor.dtype, c.tensor.shape, c.tensor.stride, c.tensor.storageOffset]);
            expect(Buffer.from(await readTensorBytes(source, t)).equals(Buffer.from(c.expected)), c.name).toBe(true);
          }
        }
        for (const record of ck.records.values()) {
          expect(record.offset % 64).toBe(0);
        }
      } finally {
        await source.close();
      }
    }
  });

  test("record order: torch2 (numeric storage order, extra records) and torch1.13 (lexicographic)", async () => {
    const dir = await makeTempDir();
    const root = Array.from({ length: 12 }, (_, i) => tensorOf("I8", [1], [i]));
    const modern = await readTorchCheckpointFile((await write(dir, "m.pt", root, {})).path);
    expect([...modern.records.keys()]).toEqual([
      "data.pkl",
      ".format_version",
      ".storage_alignment",
      "byteorder",
      ...Array.from({ length: 12 }, (_, i) => `data/${i}`),
      "version",
      ".data/serialization_id",
    ]);
    const old = await readTorchCheckpointFile((await write(dir, "o.pt", root, { recordSet: "torch1.13" })).path);
    expect([...old.records.keys()]).toEqual(["data.pkl", ...["0", "1", "10", "11", "2", "3", "4", "5", "6", "7", "8", "9"].map((k) => `data/${k}`), "version"]);
    expect(old.prefix).toBe("o");
    // storages written back to back: each data offset follows the previous record's descriptor
    const offsets = Array.from({ length: 12 }, (_, i) => modern.records.get(`data/${i}`)?.offset ?? 0);
    expect(offsets.every((o, i) => i === 0 || o > (offsets[i - 1] ?? 0))).toBe(true);
  });

  test("a dtype global and the serialization id round-trip; the prefix option is honoured", async () => {
    const dir = await makeTempDir();
    const { path } = await write(dir, "g.pt", new PyDict().set("dtype", new PyGlobal("torch", "bfloat16")), { prefix: "model_optim_rng", serializationId: "1".repeat(40) });
    const ck = await readTorchCheckpointFile(path);
    expect(ck.prefix).toBe("model_optim_rng");
    expect(ck.root instanceof PyDict && ck.root.get("dtype")).toEqual(new PyGlobal("torch", "bfloat16"));
    expect(ck.records.get(".data/serialization_id")?.size).toBe(40);
  });
});

async function write(dir: string, name: string, root: Parameters<typeof writeTorchCheckpoint>[1], options: Parameters<typeof writeTorchCheckpoint>[2]): Promise<{ path: string }> {
  const path = join(dir, name);
  await writeTorchCheckpoint(path, root, options);
  return { path };
}
