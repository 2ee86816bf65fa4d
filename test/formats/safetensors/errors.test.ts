import { describe, expect, it } from "vitest";
import { ConvertError } from "../../../src/errors.js";
import { SafetensorsError } from "../../../src/formats/safetensors/errors.js";
import { openSafetensors, openSafetensorsFile, readTensorRange } from "../../../src/formats/safetensors/reader.js";
import { makeTempDir } from "../../support/tmpdir.js";
import {
  craftSafetensors,
  entry,
  MemorySource,
  seededRandom,
  TWO_TENSOR_FILE,
  writeBytes,
  type CraftOptions,
} from "../../support/safetensors-builders.js";

/** Opens crafted bytes; returns the error, checking what every error must satisfy. */
async function failure(file: string, bytes: Uint8Array, code: string): Promise<SafetensorsError> {
  const source = new MemorySource(file, bytes);
  const error: unknown = await openSafetensors(source).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConvertError);
  expect(error).toBeInstanceOf(SafetensorsError);
  const e = error as SafetensorsError;
  expect(e.code).toBe(code);
  expect(e.message).toContain(file);
  expect(e.file).toBe(file);
  return e;
}

const craft = (options: CraftOptions): Uint8Array => craftSafetensors(options);

describe("safetensors error codes from crafted bytes", () => {
  it("safetensors.truncated: a file shorter than the 8-byte prefix", async () => {
    await failure("tiny.safetensors", new Uint8Array([1, 2, 3]), "safetensors.truncated");
  });

  it("safetensors.truncated: data buffer shorter than the header says", async () => {
    const bytes = craft({ header: { w: entry("F32", [4], 0, 16) }, data: 16 });
    const e = await failure("cut.safetensors", bytes.subarray(0, bytes.byteLength - 5), "safetensors.truncated");
    expect(e.message).toContain(String(bytes.byteLength));
  });

  it("safetensors.header-past-end: the declared header length runs past the file", async () => {
    const bytes = craft({ header: { w: entry("U8", [1], 0, 1) }, data: 1, declaredLength: 1000n });
    const e = await failure("past.safetensors", bytes, "safetensors.header-past-end");
    expect(e.message).toContain("1000");
  });

  it("safetensors.header-too-large: over 100 MB, and a u64 beyond 2^53, without allocating", async () => {
    const bytes = craft({ header: {}, declaredLength: 100_000_001n });
    await failure("big.safetensors", bytes, "safetensors.header-too-large");
    const huge = craft({ header: {}, declaredLength: 0xffff_ffff_ffff_ffffn });
    const e = await failure("huge.safetensors", huge, "safetensors.header-too-large");
    expect(e.message).toContain("18446744073709551615");
  });

  it("safetensors.bad-json: unparsable JSON, invalid UTF-8, and JSON that is not an object", async () => {
    await failure("syntax.safetensors", craft({ header: '{"w": {"dtype": ' }), "safetensors.bad-json");
    const utf8 = craft({ header: "{}" });
    utf8.set([0x7b, 0xff], 8);
    await failure("utf8.safetensors", utf8, "safetensors.bad-json");
    const array = await failure("array.safetensors", craft({ header: "[1, 2]" }), "safetensors.bad-json");
    expect(array.message).toContain("an array");
    await failure("number.safetensors", craft({ header: "42" }), "safetensors.bad-json");
    await failure("null.safetensors", craft({ header: "null" }), "safetensors.bad-json");
  });

  it("safetensors.bad-json: NUL padding instead of spaces", async () => {
    const bytes = craft({ header: '{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', pad: false, data: 1 });
    const padded = new Uint8Array(bytes.byteLength + 4);
    padded.set(bytes.subarray(0, bytes.byteLength - 1));
    new DataView(padded.buffer).setBigUint64(0, BigInt(bytes.byteLength - 8 - 1 + 4), true);
    await failure("nul.safetensors", padded, "safetensors.bad-json");
  });

  it("safetensors.offset-gap: names the tensor and the one before it", async () => {
    const bytes = craft({ header: { a: entry("U8", [4], 0, 4), b: entry("U8", [4], 8, 12) }, data: 12 });
    const e = await failure("gap.safetensors", bytes, "safetensors.offset-gap");
    expect(e.message).toContain('"b"');
    expect(e.message).toContain('"a"');
    expect(e.message).toMatch(/starts at byte 8 .*expected 4/);
  });

  it("safetensors.offset-gap: the first tensor does not start at 0", async () => {
    const e = await failure("gap0.safetensors", craft({ header: { a: entry("U8", [4], 4, 8) }, data: 8 }), "safetensors.offset-gap");
    expect(e.message).toContain('"a"');
  });

  it("safetensors.offset-overlap: names both tensors", async () => {
    const bytes = craft({ header: { a: entry("F32", [2], 0, 8), b: entry("F32", [1], 4, 8) }, data: 8 });
    const e = await failure("overlap.safetensors", bytes, "safetensors.offset-overlap");
    expect(e.message).toContain('"a"');
    expect(e.message).toContain('"b"');
  });

  it("safetensors.byte-length-mismatch: dtype x shape disagrees with data_offsets", async () => {
    const bytes = craft({ header: { w: entry("F32", [3], 0, 8) }, data: 8 });
    const e = await failure("len.safetensors", bytes, "safetensors.byte-length-mismatch");
    expect(e.message).toContain('"w"');
    expect(e.message).toContain("F32[3] = 12 bytes");
    expect(e.message).toContain("span 8");
  });

  it("safetensors.unknown-dtype: names unknown and unsupported dtypes", async () => {
    for (const dtype of ["F4", "F6_E2M3", "F8_E8M0", "F8_E4M3FNUZ", "Q8", "bf16"]) {
      const e = await failure(`${dtype}.safetensors`, craft({ header: { w: entry(dtype, [1], 0, 1) }, data: 1 }), "safetensors.unknown-dtype");
      expect(e.message).toContain(dtype);
      expect(e.message).toContain('"w"');
    }
  });

  it("safetensors.trailing-bytes: bytes after the last tensor", async () => {
    const e = await failure("trail.safetensors", craft({ header: { w: entry("U8", [2], 0, 2) }, data: 3 }), "safetensors.trailing-bytes");
    expect(e.message).toContain("1 bytes after the last tensor");
  });

  it("safetensors.duplicate-tensor: the same key twice in the header", async () => {
    const header = '{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
    const e = await failure("dup.safetensors", craft({ header, data: 2 }), "safetensors.duplicate-tensor");
    expect(e.message).toContain('"w"');
  });

  it("does not mistake nested keys or string values for duplicates", async () => {
    const header = '{"__metadata__":{"w":"w","dtype":"x"},"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
    const file = await openSafetensors(new MemorySource("nested.safetensors", craft({ header, data: 1 })));
    expect(file.metadata).toEqual({ w: "w", dtype: "x" });
  });

  it("safetensors.bad-metadata: non-string values and non-object metadata", async () => {
    const e = await failure("meta.safetensors", craft({ header: { __metadata__: { format: 1 } } }), "safetensors.bad-metadata");
    expect(e.message).toContain('"format"');
    await failure("meta2.safetensors", craft({ header: { __metadata__: ["pt"] } }), "safetensors.bad-metadata");
    await failure("meta3.safetensors", craft({ header: { __metadata__: { nested: { a: "b" } } } }), "safetensors.bad-metadata");
  });

  it("safetensors.bad-entry: malformed entries name the tensor", async () => {
    const cases: Record<string, unknown>[] = [
      { w: "F32" },
      { w: { shape: [1], data_offsets: [0, 1] } },
      { w: { dtype: "U8", data_offsets: [0, 1] } },
      { w: { dtype: "U8", shape: [-1], data_offsets: [0, 1] } },
      { w: { dtype: "U8", shape: [1.5], data_offsets: [0, 1] } },
      { w: { dtype: "U8", shape: ["1"], data_offsets: [0, 1] } },
      { w: { dtype: "U8", shape: [1], data_offsets: [0] } },
      { w: { dtype: "U8", shape: [1], data_offsets: [0, 1, 2] } },
      { w: { dtype: "U8", shape: [1], data_offsets: [1, 0] } },
      { w: { dtype: "U8", shape: [1], data_offsets: [0, 2 ** 60] } },
      { w: { dtype: "F64", shape: [2 ** 26, 2 ** 26, 2 ** 26], data_offsets: [0, 1] } },
    ];
    for (const [i, header] of cases.entries()) {
      const e = await failure(`entry${i}.safetensors`, craft({ header, data: 1 }), "safetensors.bad-entry");
      expect(e.message).toContain('"w"');
    }
  });

  it("safetensors.range-out-of-bounds: a range outside the tensor", async () => {
    const path = await writeBytes(await makeTempDir(), "two.safetensors", TWO_TENSOR_FILE);
    const file = await openSafetensorsFile(path);
    try {
      const w = file.tensor("w");
      expect(w).toBeDefined();
      if (w === undefined) {
        return;
      }
      for (const [offset, length] of [[0, 9], [8, 1], [-1, 1], [0, -1], [0.5, 1], [Number.MAX_SAFE_INTEGER, 2]] as const) {
        const error: unknown = await readTensorRange(file.source, w, offset, length).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConvertError);
        expect((error as SafetensorsError).code).toBe("safetensors.range-out-of-bounds");
        expect((error as Error).message).toContain(path);
        expect((error as Error).message).toContain('"w"');
      }
    } finally {
      await file.close();
    }
  });

  it("errors name the real path when read from disk, and the handle is closed", async () => {
    const dir = await makeTempDir();
    const path = await writeBytes(dir, "gap.safetensors", craft({ header: { a: entry("U8", [1], 1, 2) }, data: 2 }));
    await expect(openSafetensorsFile(path)).rejects.toThrow(path);
  });
});

describe("hostile inputs never crash or hang", () => {
  it("every mutation or truncation of a valid file either opens or throws a ConvertError", async () => {
    const random = seededRandom(0xbad);
    for (let round = 0; round < 2000; round++) {
      const bytes = TWO_TENSOR_FILE.slice();
      const flips = 1 + Math.floor(random() * 4);
      for (let i = 0; i < flips; i++) {
        bytes[Math.floor(random() * bytes.byteLength)] = Math.floor(random() * 256);
      }
      const cut = random() < 0.2 ? Math.floor(random() * bytes.byteLength) : bytes.byteLength;
      const result: unknown = await openSafetensors(new MemorySource("fuzz.safetensors", bytes.subarray(0, cut))).catch((e: unknown) => e);
      if (result instanceof Error) {
        expect(result, result.stack).toBeInstanceOf(ConvertError);
      }
    }
  });
});
