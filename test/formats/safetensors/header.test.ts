import { describe, expect, it } from "vitest";
import { decodeHeaderLength, encodeHeaderLength } from "../../../src/formats/safetensors/header.js";
import { parseSafetensorsHeader } from "../../../src/formats/safetensors/reader.js";
import { serializeSafetensorsHeader } from "../../../src/formats/safetensors/writer.js";
import { DTYPE_BYTES, type Dtype, type TensorSpec } from "../../../src/model/tensor.js";
import { ascii, ONE_TENSOR_AB, seededRandom, TWO_TENSOR_DATA, TWO_TENSOR_HEADER, TWO_TENSOR_SPECS } from "../../support/safetensors-builders.js";

describe("serializeSafetensorsHeader golden bytes", () => {
  it("writes the reference one-tensor header byte for byte (56-byte JSON, no padding)", () => {
    const { header, offsets } = serializeSafetensorsHeader([{ name: "ab", dtype: "BF16", shape: [1] }]);
    expect([...header]).toEqual(ONE_TENSOR_AB);
    expect(offsets).toEqual([0]);
  });

  it("pads a 55-byte JSON with one space", () => {
    const { header } = serializeSafetensorsHeader([{ name: "a", dtype: "BF16", shape: [1] }]);
    expect([...header]).toEqual([
      ...[0x38, 0, 0, 0, 0, 0, 0, 0],
      ...ascii('{"a":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}} '),
    ]);
  });

  it("writes the hand-made two-tensor header with metadata first and offsets in the given order", () => {
    const { header, offsets } = serializeSafetensorsHeader(TWO_TENSOR_SPECS, { format: "pt" });
    expect([...header]).toEqual(TWO_TENSOR_HEADER);
    expect(header.byteLength % 8).toBe(0);
    expect(offsets).toEqual([0, 8]);
  });

  it("keeps integer-like and non-ASCII names in the given order and escapes quotes", () => {
    const specs: TensorSpec[] = [
      { name: "b", dtype: "U8", shape: [1] },
      { name: "1", dtype: "U8", shape: [1] },
      { name: 'q"é\n', dtype: "U8", shape: [1] },
    ];
    const { header } = serializeSafetensorsHeader(specs);
    const text = new TextDecoder().decode(header.subarray(8)).trimEnd();
    expect(text).toBe('{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"1":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"q\\"é\\n":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}');
  });
});

describe("parseSafetensorsHeader golden bytes", () => {
  it("parses the hand-made two-tensor file into data-offset order with absolute offsets", () => {
    const json = new Uint8Array(TWO_TENSOR_HEADER.slice(8));
    const fileSize = TWO_TENSOR_HEADER.length + TWO_TENSOR_DATA.length;
    const parsed = parseSafetensorsHeader(json, fileSize, "two.safetensors");
    expect(parsed.metadata).toEqual({ format: "pt" });
    expect(parsed.tensors).toEqual([
      { name: "w", dtype: "F32", shape: [2], file: "two.safetensors", dataOffset: 152, byteLength: 8 },
      { name: "n", dtype: "I64", shape: [], file: "two.safetensors", dataOffset: 160, byteLength: 8 },
    ]);
  });

  it("parses the reference one-tensor header", () => {
    const parsed = parseSafetensorsHeader(new Uint8Array(ONE_TENSOR_AB.slice(8)), 66, "ab.safetensors");
    expect(parsed.metadata).toEqual({});
    expect(parsed.tensors).toEqual([{ name: "ab", dtype: "BF16", shape: [1], file: "ab.safetensors", dataOffset: 64, byteLength: 2 }]);
  });

  it("tolerates leading and trailing JSON whitespace and sorts by data_offsets", () => {
    const text = ' \n{"z":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"a":{"dtype":"U8","shape":[],"data_offsets":[2,3]}}\t ';
    const json = new TextEncoder().encode(text);
    const parsed = parseSafetensorsHeader(json, 8 + json.byteLength + 3, "ws.safetensors");
    expect(parsed.tensors.map((t) => t.name)).toEqual(["z", "a"]);
  });

  it("accepts empty tensors at the same offset as the next one", () => {
    const text = '{"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}';
    const json = new TextEncoder().encode(text);
    const parsed = parseSafetensorsHeader(json, 8 + json.byteLength + 4, "e.safetensors");
    expect(parsed.tensors.map((t) => [t.name, t.byteLength])).toEqual([["e", 0], ["b", 4]]);
  });
});

describe("header length prefix", () => {
  it("round-trips through encode and decode", () => {
    for (const n of [0, 1, 56, 4096, 99_999_999]) {
      expect(decodeHeaderLength(encodeHeaderLength(n), n + 8, "f")).toBe(n);
    }
  });
});

describe("header property round trip (pure, seeded)", () => {
  const dtypes = Object.keys(DTYPE_BYTES) as Dtype[];

  it("serialize then parse gives back the specs over 1000 random headers", () => {
    const random = seededRandom(0x5afe);
    for (let round = 0; round < 1000; round++) {
      const count = Math.floor(random() * 6);
      const specs: TensorSpec[] = [];
      for (let i = 0; i < count; i++) {
        const rank = Math.floor(random() * 4);
        const shape = Array.from({ length: rank }, () => Math.floor(random() * 5));
        specs.push({ name: `t${round}.${i}.${Math.floor(random() * 1e6)}`, dtype: dtypes[Math.floor(random() * dtypes.length)] ?? "U8", shape });
      }
      const metadata = random() < 0.5 ? undefined : { format: "pt", round: String(round) };
      const { header, offsets } = serializeSafetensorsHeader(specs, metadata);
      const dataBytes = specs.reduce((sum, s) => sum + s.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[s.dtype], 0);
      const parsed = parseSafetensorsHeader(header.subarray(8), header.byteLength + dataBytes, "prop");
      expect(parsed.metadata).toEqual(metadata ?? {});
      const byName = new Map(parsed.tensors.map((t) => [t.name, t] as const));
      specs.forEach((spec, i) => {
        const t = byName.get(spec.name);
        expect(t).toMatchObject({ dtype: spec.dtype, shape: spec.shape, dataOffset: header.byteLength + (offsets[i] ?? -1) });
      });
      expect(parsed.tensors.length).toBe(specs.length);
    }
  });
});
