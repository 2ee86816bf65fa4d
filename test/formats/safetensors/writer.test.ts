import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConvertError } from "../../../src/errors.js";
import type { SafetensorsError } from "../../../src/formats/safetensors/errors.js";
import { openSafetensorsFolder } from "../../../src/formats/safetensors/folder.js";
import { openSafetensorsFile, readTensorRange } from "../../../src/formats/safetensors/reader.js";
import { planShards, serializeSafetensorsHeader, writeSafetensors, writeSafetensorsSharded, type TensorPayload } from "../../../src/formats/safetensors/writer.js";
import { byteLengthOf, DTYPE_BYTES, type Dtype, type TensorSpec } from "../../../src/model/tensor.js";
import { makeTempDir } from "../../support/tmpdir.js";
import { chunked, counterBytes, seededRandom, TWO_TENSOR_DATA, TWO_TENSOR_FILE, TWO_TENSOR_SPECS } from "../../support/safetensors-builders.js";

function payload(spec: TensorSpec, bytes: Uint8Array, random?: () => number): TensorPayload {
  return { spec, data: () => (random === undefined ? once(bytes) : chunked(bytes, random)) };
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

async function errorOf(promise: Promise<unknown>): Promise<SafetensorsError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConvertError);
  return error as SafetensorsError;
}

describe("writeSafetensors", () => {
  it("writes the hand-made two-tensor golden file byte for byte (default metadata format=pt)", async () => {
    const path = join(await makeTempDir(), "two.safetensors");
    const data = new Uint8Array(TWO_TENSOR_DATA);
    const tensors = TWO_TENSOR_SPECS.map((spec, i) => payload(spec, data.subarray(i * 8, i * 8 + 8)));
    const { bytes } = await writeSafetensors(path, tensors);
    expect(bytes).toBe(TWO_TENSOR_FILE.byteLength);
    expect([...(await readFile(path))]).toEqual([...TWO_TENSOR_FILE]);
  });

  it("round-trips 240 seeded random files: dtypes, 0-dim and empty shapes, odd names, random chunking", async () => {
    const dir = await makeTempDir();
    const random = seededRandom(20240601);
    const dtypes = Object.keys(DTYPE_BYTES) as Dtype[];
    const oddNames = ["0", "10", "é.weight", 'quote"name', "tab\tname", "🙂", "a.b.c"];
    for (let round = 0; round < 240; round++) {
      const count = Math.floor(random() * 6);
      const specs: TensorSpec[] = [];
      for (let i = 0; i < count; i++) {
        const rank = Math.floor(random() * 4);
        const shape = Array.from({ length: rank }, () => (random() < 0.1 ? 0 : 1 + Math.floor(random() * 6)));
        const name = random() < 0.3 ? `${oddNames[Math.floor(random() * oddNames.length)] ?? "x"}#${i}` : `layers.${i}.w`;
        specs.push({ name, dtype: dtypes[Math.floor(random() * dtypes.length)] ?? "U8", shape });
      }
      const datas = specs.map((s, i) => counterBytes(byteLengthOf(s), round * 7 + i * 31));
      const metadata = random() < 0.5 ? undefined : { format: "pt", round: `r${round}` };
      const path = join(dir, `r${round}.safetensors`);
      const written = await writeSafetensors(path, specs.map((s, i) => payload(s, datas[i] ?? new Uint8Array(0), random)), metadata === undefined ? undefined : { metadata });

      const file = await openSafetensorsFile(path);
      try {
        expect(file.source.size).toBe(written.bytes);
        expect(file.metadata).toEqual(metadata ?? { format: "pt" });
        expect(file.tensors.map((t) => t.name).sort()).toEqual(specs.map((s) => s.name).sort());
        const offsets = file.tensors.map((t) => t.dataOffset);
        expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
        for (const [i, spec] of specs.entries()) {
          const t = file.tensor(spec.name);
          expect(t).toMatchObject({ dtype: spec.dtype, shape: spec.shape });
          if (t !== undefined) {
            expect(await readTensorRange(file.source, t, 0, t.byteLength)).toEqual(datas[i]);
          }
        }
      } finally {
        await file.close();
      }
    }
  });

  it("safetensors.payload-length: too many or too few bytes; the partial file is removed", async () => {
    const dir = await makeTempDir();
    const spec: TensorSpec = { name: "w", dtype: "F32", shape: [2] };
    const long = await errorOf(writeSafetensors(join(dir, "long.safetensors"), [payload(spec, new Uint8Array(9))]));
    expect(long.code).toBe("safetensors.payload-length");
    expect(long.message).toContain("long.safetensors");
    expect(long.message).toContain('"w"');
    const short = await errorOf(writeSafetensors(join(dir, "short.safetensors"), [payload(spec, new Uint8Array(7))]));
    expect(short.code).toBe("safetensors.payload-length");
    expect(await readdir(dir)).toEqual([]);
  });

  it("refuses to overwrite an existing file and leaves it alone", async () => {
    const dir = await makeTempDir();
    const path = join(dir, "x.safetensors");
    await writeFile(path, "keep");
    const error = await errorOf(writeSafetensors(path, []));
    expect(error.code).toBe("io.access");
    expect(await readFile(path, "utf8")).toBe("keep");
  });

  it("safetensors.duplicate-tensor and reserved names are refused before anything is written", async () => {
    const dir = await makeTempDir();
    const spec: TensorSpec = { name: "w", dtype: "U8", shape: [1] };
    const dup = await errorOf(writeSafetensors(join(dir, "d.safetensors"), [payload(spec, new Uint8Array(1)), payload(spec, new Uint8Array(1))]));
    expect(dup.code).toBe("safetensors.duplicate-tensor");
    const reserved = await errorOf(writeSafetensors(join(dir, "r.safetensors"), [payload({ ...spec, name: "__metadata__" }, new Uint8Array(1))]));
    expect(reserved.code).toBe("safetensors.bad-entry");
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("serializeSafetensorsHeader limits", () => {
  it("safetensors.header-too-large: a header over 100 MB is refused", () => {
    let caught: unknown;
    try {
      serializeSafetensorsHeader([], { huge: "x".repeat(100_000_000) });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ConvertError);
    expect((caught as SafetensorsError).code).toBe("safetensors.header-too-large");
  });
});

describe("planShards", () => {
  const u8 = (name: string, n: number): TensorSpec => ({ name, dtype: "U8", shape: [n] });
  const names = (shards: TensorSpec[][]): string[][] => shards.map((s) => s.map((t) => t.name));

  it("fills shards greedily in order", () => {
    expect(names(planShards([u8("a", 4), u8("b", 4), u8("c", 4), u8("d", 1)], 8))).toEqual([["a", "b"], ["c", "d"]]);
    expect(names(planShards([u8("a", 5), u8("b", 4), u8("c", 3)], 8))).toEqual([["a"], ["b", "c"]]);
  });

  it("gives a tensor bigger than the limit its own shard", () => {
    expect(names(planShards([u8("a", 2), u8("big", 20), u8("b", 2)], 8))).toEqual([["a"], ["big"], ["b"]]);
    expect(names(planShards([u8("big", 20), u8("b", 2)], 8))).toEqual([["big"], ["b"]]);
  });

  it("returns one empty shard for no tensors and rejects a bad limit", () => {
    expect(planShards([], 8)).toEqual([[]]);
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => planShards([], bad)).toThrow(ConvertError);
    }
  });
});

describe("writeSafetensorsSharded", () => {
  const specs: TensorSpec[] = [
    { name: "model.embed_tokens.weight", dtype: "BF16", shape: [1000] },
    { name: "model.layers.0.w", dtype: "BF16", shape: [1000] },
    { name: "model.layers.1.w", dtype: "BF16", shape: [1000] },
    { name: "lm_head.weight", dtype: "F32", shape: [10] },
  ];
  const tensors = specs.map((s, i) => payload(s, counterBytes(byteLengthOf(s), i)));

  it("writes shards and an index that openSafetensorsFolder reads back", async () => {
    const dir = join(await makeTempDir(), "out");
    const result = await writeSafetensorsSharded(dir, tensors, { maxShardBytes: 2500 });
    expect(result.totalSize).toBe(6040);
    expect(result.files.map((f) => f.slice(dir.length + 1))).toEqual([
      "model-00001-of-00003.safetensors",
      "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors",
    ]);
    expect(result.indexFile).toBe(join(dir, "model.safetensors.index.json"));
    const index = JSON.parse(await readFile(join(dir, "model.safetensors.index.json"), "utf8")) as unknown;
    expect(index).toEqual({
      metadata: { total_parameters: 3010, total_size: 6040 },
      weight_map: {
        "lm_head.weight": "model-00003-of-00003.safetensors",
        "model.embed_tokens.weight": "model-00001-of-00003.safetensors",
        "model.layers.0.w": "model-00002-of-00003.safetensors",
        "model.layers.1.w": "model-00003-of-00003.safetensors",
      },
    });
    const checkpoint = await openSafetensorsFolder(dir);
    try {
      expect([...checkpoint.tensors.keys()]).toEqual(specs.map((s) => s.name));
      for (const [i, spec] of specs.entries()) {
        const t = checkpoint.tensors.get(spec.name);
        if (t === undefined) {
          throw new Error(`${spec.name} missing`);
        }
        expect(await readTensorRange(checkpoint.sourceOf(t), t, 0, t.byteLength)).toEqual(counterBytes(byteLengthOf(spec), i));
      }
    } finally {
      await checkpoint.close();
    }
  });

  it("writes a single model.safetensors and no index when everything fits", async () => {
    const dir = await makeTempDir();
    const result = await writeSafetensorsSharded(dir, tensors, { maxShardBytes: 10_000, metadata: { format: "pt", by: "test" } });
    expect(result).toEqual({ files: [join(dir, "model.safetensors")], totalSize: 6040 });
    expect(await readdir(dir)).toEqual(["model.safetensors"]);
    const checkpoint = await openSafetensorsFolder(dir);
    expect(checkpoint.files[0]?.metadata).toEqual({ format: "pt", by: "test" });
    await checkpoint.close();
  });

  it("removes the shards already written when a later one fails", async () => {
    const dir = await makeTempDir();
    const bad = [...tensors.slice(0, 3), payload({ name: "lm_head.weight", dtype: "F32", shape: [10] }, new Uint8Array(3))];
    const error = await errorOf(writeSafetensorsSharded(dir, bad, { maxShardBytes: 2500 }));
    expect(error.code).toBe("safetensors.payload-length");
    expect(await readdir(dir)).toEqual([]);
  });

  it("refuses duplicate names across shards", async () => {
    const dir = await makeTempDir();
    const error = await errorOf(writeSafetensorsSharded(dir, [tensors[0], tensors[1], tensors[0]].filter((t) => t !== undefined), { maxShardBytes: 2000 }));
    expect(error.code).toBe("safetensors.duplicate-tensor");
    expect(await readdir(dir)).toEqual([]);
  });
});
