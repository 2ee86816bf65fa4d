import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { readFile, writeFile } from "node:fs/promises";
import { describe, expect, test } from "vitest";
import { crc32, crc32Portable } from "../../../src/formats/torch/zip/crc32.js";
import { readZipEntries, readZipRecord } from "../../../src/formats/torch/zip/reader.js";
import { CENTRAL, END, LOCAL, M32, SIG, ZIP64_END, buildCentralHeader, buildDescriptor, buildEndRecords, buildLocalHeader, zip64Need } from "../../../src/formats/torch/zip/records.js";
import { runPython } from "../../support/python.js";
import { makeTempDir } from "../../support/tmpdir.js";
import { ascii, lastSignature, memorySource, patch, sparseSource, zipInMemory } from "../../support/torch-builders.js";

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");
const u64hex = (n: number): string => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b.toString("hex");
};

const BIG = 4_400_000_000;

function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) {
    throw new Error(`no item ${index}`);
  }
  return item;
}
const FAR = 5_000_000_000;

describe("crc32", () => {
  test("matches the check value, streams, and the table version equals the native one", () => {
    expect(crc32(ascii("123456789"))).toBe(0xcbf43926);
    expect(crc32Portable(ascii("123456789"))).toBe(0xcbf43926);
    const data = randomBytes(100_003);
    const whole = crc32(data);
    expect(crc32(data.subarray(5000), crc32(data.subarray(0, 5000)))).toBe(whole);
    expect(crc32Portable(data.subarray(5000), crc32Portable(data.subarray(0, 5000)))).toBe(whole);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});

describe("record builders with sizes and offsets >= 4 GiB (torch-format.md 1.2-1.6)", () => {
  const name = ascii("a/data/1");

  test("zip64 is needed from 0xFFFFFFFF on (miniz compares with >=)", () => {
    expect(zip64Need(M32 - 1, M32 - 1)).toEqual({ big: false, far: false });
    expect(zip64Need(M32, 0)).toEqual({ big: true, far: false });
    expect(zip64Need(0, M32)).toEqual({ big: false, far: true });
    expect(zip64Need(1, 1, true)).toEqual({ big: true, far: true });
  });

  test("local header: zip64 extra (usize, csize 0) for a big record, then FB padding to 64", () => {
    const h = buildLocalHeader(name, BIG, 928);
    const pad = (64 - ((928 + 30 + 8 + 20 + 4) % 64)) % 64;
    expect(h.byteLength).toBe(30 + 8 + 20 + 4 + pad);
    expect((928 + h.byteLength) % 64).toBe(0);
    expect(hex(h.subarray(0, 30))).toBe("504b0304" + "0000" + "0808" + "0000" + "0000" + "0000" + "00000000" + "00000000" + "00000000" + "0800" + (20 + 4 + pad).toString(16).padStart(2, "0") + "00");
    expect(hex(h.subarray(38, 58))).toBe("0100" + "1000" + u64hex(BIG) + u64hex(0));
    expect(hex(h.subarray(58, 62))).toBe("4642" + pad.toString(16).padStart(2, "0") + "00");
    expect(h.subarray(62).every((b) => b === 0x5a)).toBe(true);
  });

  test("local header: zip64 extra (offset) for a record past 4 GiB, and both", () => {
    const far = buildLocalHeader(name, 2, FAR);
    expect(hex(far.subarray(38, 50))).toBe("0100" + "0800" + u64hex(FAR));
    expect((FAR + far.byteLength) % 64).toBe(0);
    const both = buildLocalHeader(name, BIG, FAR);
    expect(hex(both.subarray(38, 66))).toBe("0100" + "1800" + u64hex(BIG) + u64hex(0) + u64hex(FAR));
    expect((FAR + both.byteLength) % 64).toBe(0);
  });

  test("an empty record has flags 0x0800 and padding 0 still writes FB\\0\\0", () => {
    // 30 + 26 name + 4 = 60 -> pad 4; choose a name that needs no padding: 30 + 30 + 4 = 64
    const h = buildLocalHeader(ascii("x".repeat(30)), 0, 0);
    expect(hex(h.subarray(6, 8))).toBe("0008");
    expect(h.byteLength).toBe(64);
    expect(hex(h.subarray(60))).toBe("46420000");
  });

  test("data descriptor: u32 sizes normally, u64 when big or far", () => {
    expect(hex(buildDescriptor(0x0c133c43, 230, zip64Need(230, 0)))).toBe("504b0708433c130ce6000000e6000000");
    expect(hex(buildDescriptor(1, BIG, zip64Need(BIG, 0)))).toBe("504b0708" + "01000000" + u64hex(BIG) + u64hex(BIG));
    expect(hex(buildDescriptor(1, 2, zip64Need(2, FAR)))).toBe("504b0708" + "01000000" + u64hex(2) + u64hex(2));
  });

  test("central header: 0xFFFFFFFF fields with the values in the zip64 extra, in order usize, csize, offset", () => {
    const big = buildCentralHeader({ name, crc: 7, size: BIG, headerOffset: 928, need: zip64Need(BIG, 928) });
    const view = new DataView(big.buffer);
    expect(view.getUint32(CENTRAL.compressedSize, true)).toBe(M32);
    expect(view.getUint32(CENTRAL.size, true)).toBe(M32);
    expect(view.getUint32(CENTRAL.localHeaderOffset, true)).toBe(928);
    expect(hex(big.subarray(46 + 8))).toBe("0100" + "1000" + u64hex(BIG) + u64hex(BIG));
    const both = buildCentralHeader({ name, crc: 7, size: BIG, headerOffset: FAR, need: zip64Need(BIG, FAR) });
    expect(new DataView(both.buffer).getUint32(CENTRAL.localHeaderOffset, true)).toBe(M32);
    expect(hex(both.subarray(46 + 8))).toBe("0100" + "1800" + u64hex(BIG) + u64hex(BIG) + u64hex(FAR));
    const small = buildCentralHeader({ name, crc: 7, size: 4, headerOffset: 64, need: zip64Need(4, 64) });
    expect(small.byteLength).toBe(46 + 8);
  });

  test("end records: zip64 EOCD + locator always; the classic EOCD saturates", () => {
    const end = buildEndRecords(70_000, FAR, BIG);
    expect(hex(end.subarray(0, 56))).toBe("504b0606" + u64hex(44) + "1e03" + "2d00" + "00000000" + "00000000" + u64hex(70_000) + u64hex(70_000) + u64hex(FAR) + u64hex(BIG));
    expect(hex(end.subarray(56, 76))).toBe("504b0607" + "00000000" + u64hex(BIG + FAR) + "01000000");
    expect(hex(end.subarray(76))).toBe("504b0506" + "0000" + "0000" + "ffff" + "ffff" + "ffffffff" + "ffffffff" + "0000");
    // 1.6: 4 entries, cd 0xef bytes at 0x292
    expect(hex(buildEndRecords(4, 0xef, 0x292).subarray(76))).toBe("504b05060000000004000400ef000000920200000000");
  });

  test("the reader resolves zip64 sizes and offsets from a (sparse) 12 GB archive", async () => {
    const big = ascii("x/data/1");
    const after = ascii("x/version");
    const bigHeader = buildLocalHeader(big, BIG, 0);
    const afterOffset = bigHeader.byteLength + BIG + 24;
    const afterHeader = buildLocalHeader(after, 2, afterOffset);
    const cdOffset = afterOffset + afterHeader.byteLength + 2 + 24;
    const cd = Buffer.concat([
      buildCentralHeader({ name: big, crc: 0, size: BIG, headerOffset: 0, need: zip64Need(BIG, 0) }),
      buildCentralHeader({ name: after, crc: 0, size: 2, headerOffset: afterOffset, need: zip64Need(2, afterOffset) }),
    ]);
    const end = buildEndRecords(2, cd.byteLength, cdOffset);
    const size = cdOffset + cd.byteLength + end.byteLength;
    const source = sparseSource(size, [
      [0, bigHeader],
      [afterOffset, afterHeader],
      [afterOffset + afterHeader.byteLength, ascii("3\n")],
      [cdOffset, cd],
      [cdOffset + cd.byteLength, end],
    ]);
    const entries = await readZipEntries(source);
    expect(entries.map((e) => [e.name, e.size, e.headerOffset, e.dataOffset])).toEqual([
      ["x/data/1", BIG, 0, bigHeader.byteLength],
      ["x/version", 2, afterOffset, afterOffset + afterHeader.byteLength],
    ]);
    expect(new TextDecoder().decode(await readZipRecord(source, at(entries, 1)))).toBe("3\n");
  });
});

describe("ZipWriter -> readers", () => {
  const records: Array<[string, Uint8Array]> = [
    ["p/data.pkl", ascii("hello")],
    ["p/empty", new Uint8Array(0)],
    ["p/data/0", randomBytes(1000)],
  ];

  for (const force of [false, true]) {
    test(`round trip${force ? " with forced zip64 extras" : ""}; data is 64-aligned; Python zipfile reads it and checks the CRCs`, async () => {
      const bytes = await zipInMemory(records, force);
      const entries = await readZipEntries(memorySource(bytes));
      expect(entries.map((e) => e.name)).toEqual(records.map(([n]) => n));
      for (const [i, entry] of entries.entries()) {
        expect(entry.dataOffset % 64).toBe(0);
        expect(hex(await readZipRecord(memorySource(bytes), entry))).toBe(hex(records[i]?.[1] ?? new Uint8Array()));
        expect(entry.crc).toBe(crc32(records[i]?.[1] ?? new Uint8Array()));
      }
      const dir = await makeTempDir();
      const path = join(dir, "a.zip");
      await writeFile(path, bytes);
      const out = runPython("import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nprint(z.testzip(), [len(z.read(n)) for n in z.namelist()])", [path]);
      expect(out.trim()).toBe("None [5, 0, 1000]");
    });
  }

  test("reads a deflated record and an archive without zip64 records (as Python's zipfile writes)", async () => {
    const dir = await makeTempDir();
    const path = join(dir, "py.zip");
    runPython(
      "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n  z.writestr('q/data.pkl', b'abc' * 100, compress_type=zipfile.ZIP_DEFLATED)\n  z.writestr('q/version', b'3')",
      [path],
    );
    const source = memorySource(new Uint8Array(await readFile(path)), path);
    const entries = await readZipEntries(source);
    expect(entries.map((e) => [e.name, e.method])).toEqual([
      ["q/data.pkl", 8],
      ["q/version", 0],
    ]);
    expect(new TextDecoder().decode(await readZipRecord(source, at(entries, 0)))).toBe("abc".repeat(100));
  });
});

describe("malformed archives give typed errors naming the file", () => {
  async function sample(): Promise<Uint8Array> {
    return zipInMemory([
      ["p/data.pkl", ascii("hello")],
      ["p/version", ascii("3\n")],
    ]);
  }
  async function failure(bytes: Uint8Array): Promise<{ code: string; message: string }> {
    const error = await readZipEntries(memorySource(bytes, "broken.pt")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    const { code, message } = error as { code: string; message: string };
    expect(message).toContain("broken.pt");
    return { code, message };
  }

  test("no EOCD: garbage, tiny and truncated files", async () => {
    const bytes = await sample();
    expect((await failure(randomBytes(5000))).code).toBe("torch.zip-no-eocd");
    expect((await failure(new Uint8Array(3))).code).toBe("torch.zip-no-eocd");
    expect((await failure(bytes.subarray(0, bytes.byteLength - 10))).code).toBe("torch.zip-no-eocd");
    expect((await failure(bytes.subarray(0, 200))).code).toBe("torch.zip-no-eocd");
  });

  test("central directory offset past the end (zip64 and classic)", async () => {
    const bytes = await sample();
    const z64 = lastSignature(bytes, SIG.zip64End);
    expect((await failure(patch(bytes, z64 + ZIP64_END.cdOffset, 1_000_000, 8))).code).toBe("torch.zip-bad-directory");
    const eocd = lastSignature(bytes, SIG.end);
    const classicOnly = bytes.slice(0, z64).length;
    const noZip64 = Buffer.concat([bytes.subarray(0, classicOnly), bytes.subarray(eocd)]);
    expect((await failure(patch(noZip64, classicOnly + END.cdOffset, 1_000_000))).code).toBe("torch.zip-bad-directory");
    expect((await failure(patch(bytes, z64 + ZIP64_END.entries, 1_000_000, 8))).code).toBe("torch.zip-bad-directory");
  });

  test("a broken central header, a broken zip64 record and a locator pointing past it", async () => {
    const bytes = await sample();
    const cd = lastSignature(bytes, SIG.central);
    expect((await failure(patch(bytes, cd, 0x12345678))).code).toBe("torch.zip-bad-directory");
    const z64 = lastSignature(bytes, SIG.zip64End);
    expect((await failure(patch(bytes, z64, 0x12345678))).code).toBe("torch.zip-bad-directory");
    const locator = lastSignature(bytes, SIG.zip64Locator);
    expect((await failure(patch(bytes, locator + 8, bytes.byteLength, 8))).code).toBe("torch.zip-bad-directory");
  });

  test("bad local header signature", async () => {
    const bytes = await sample();
    const error = await failure(patch(bytes, 0, 0x04034b51));
    expect(error.code).toBe("torch.zip-bad-local-header");
    expect(error.message).toContain("p/data.pkl");
  });

  test("record data or local header past the end", async () => {
    const bytes = await sample();
    const cd = lastSignature(bytes, SIG.central);
    const sized = patch(patch(bytes, cd + CENTRAL.compressedSize, 100_000), cd + CENTRAL.size, 100_000);
    const error = await failure(sized);
    expect(error.code).toBe("torch.zip-record-out-of-bounds");
    expect(error.message).toContain("p/version");
    expect((await failure(patch(bytes, cd + CENTRAL.localHeaderOffset, bytes.byteLength - 10))).code).toBe("torch.zip-record-out-of-bounds");
    const needs64 = patch(bytes, cd + CENTRAL.localHeaderOffset, M32);
    expect((await failure(needs64)).code).toBe("torch.zip-bad-directory");
  });

  test("unsupported compression and encryption", async () => {
    const bytes = await sample();
    const cd = lastSignature(bytes, SIG.central);
    const entries = await readZipEntries(memorySource(patch(bytes, cd + CENTRAL.method, 12, 2), "broken.pt"));
    await expect(readZipRecord(memorySource(bytes, "broken.pt"), at(entries, 1))).rejects.toMatchObject({ code: "torch.zip-unsupported" });
    expect((await failure(patch(bytes, cd + CENTRAL.flags, 0x0809, 2))).code).toBe("torch.zip-unsupported");
    expect(LOCAL.fixedSize).toBe(30);
  });
});
