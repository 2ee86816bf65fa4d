import { describe, expect, it } from "vitest";
import { openSafetensors, openSafetensorsFile, readTensorRange } from "../../../src/formats/safetensors/reader.js";
import { makeTempDir } from "../../support/tmpdir.js";
import { craftSafetensors, entry, MemorySource, TWO_TENSOR_FILE, writeBytes } from "../../support/safetensors-builders.js";

describe("openSafetensors", () => {
  it("reads the hand-made two-tensor golden file from disk", async () => {
    const path = await writeBytes(await makeTempDir(), "two.safetensors", TWO_TENSOR_FILE);
    const file = await openSafetensorsFile(path);
    try {
      expect(file.headerBytes).toBe(152);
      expect(file.metadata).toEqual({ format: "pt" });
      expect(file.source.name).toBe(path);
      expect(file.tensors.map((t) => [t.name, t.dataOffset, t.byteLength, t.file])).toEqual([
        ["w", 152, 8, path],
        ["n", 160, 8, path],
      ]);
      const w = file.tensor("w");
      const n = file.tensor("n");
      expect(file.tensor("missing")).toBeUndefined();
      if (w === undefined || n === undefined) {
        throw new Error("tensors missing");
      }
      const wBytes = await readTensorRange(file.source, w, 0, 8);
      expect([...new Float32Array(wBytes.slice().buffer)]).toEqual([1, -2]);
      const nBytes = await readTensorRange(file.source, n, 0, 8);
      expect(new DataView(nBytes.buffer, nBytes.byteOffset).getBigInt64(0, true)).toBe(-7n);
      expect([...(await readTensorRange(file.source, w, 4, 4))]).toEqual([0x00, 0x00, 0x00, 0xc0]);
    } finally {
      await file.close();
    }
  });

  it("reads only the prefix and the header when opening", async () => {
    const source = new MemorySource("big.safetensors", craftSafetensors({ header: { w: entry("U8", [4096], 0, 4096) }, data: 4096 }));
    const file = await openSafetensors(source);
    expect(source.reads).toEqual([
      { offset: 0, length: 8 },
      { offset: 8, length: file.headerBytes - 8 },
    ]);
  });

  it("reads exactly the requested byte range of a tensor and nothing else", async () => {
    const data = new Uint8Array(300).map((_, i) => i & 0xff);
    const source = new MemorySource("r.safetensors", craftSafetensors({ header: { a: entry("U8", [100], 0, 100), b: entry("I16", [100], 100, 300) }, data }));
    const file = await openSafetensors(source);
    const b = file.tensor("b");
    if (b === undefined) {
      throw new Error("b missing");
    }
    source.reads.length = 0;
    const got = await readTensorRange(source, b, 10, 20);
    expect(source.reads).toEqual([{ offset: b.dataOffset + 10, length: 20 }]);
    expect([...got]).toEqual([...data.subarray(110, 130)]);
    expect((await readTensorRange(source, b, 200, 0)).byteLength).toBe(0);
  });

  it("reads a file with no tensors and only metadata", async () => {
    const file = await openSafetensors(new MemorySource("empty.safetensors", craftSafetensors({ header: { __metadata__: { format: "pt" } } })));
    expect(file.tensors).toEqual([]);
    expect(file.metadata).toEqual({ format: "pt" });
  });

  it("close closes the source", async () => {
    const source = new MemorySource("c.safetensors", TWO_TENSOR_FILE);
    const file = await openSafetensors(source);
    await file.close();
    expect(source.closed).toBe(true);
  });
});
