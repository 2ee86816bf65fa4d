import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { readTorchCheckpoint, readTorchCheckpointFile } from "../../../src/formats/torch/checkpoint-reader.js";
import { pickle } from "../../../src/formats/torch/pickle/pickler.js";
import { PyDict, PyOrderedDict, TensorRef } from "../../../src/formats/torch/pickle/values.js";
import { CENTRAL, SIG } from "../../../src/formats/torch/zip/records.js";
import { runPython } from "../../support/python.js";
import { makeTempDir } from "../../support/tmpdir.js";
import { ascii, encodeValues, memorySource, patch, tensorOf, zipInMemory } from "../../support/torch-builders.js";

const PKL = pickle(new PyOrderedDict().set("w", tensorOf("F32", [2], [1, 2])), "x").bytes;
const DATA = encodeValues("F32", [1, 2]);
const VERSION = ascii("3\n");

/** A hand-written data.pkl: one FloatStorage-like tensor of shape [2] whose storage has `numel` elements. */
function tensorPickle(storageClass: string, numel: number): Uint8Array {
  const parts = [
    "\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\n",
    `${storageClass}\n`,
    "X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK",
    String.fromCharCode(numel),
    "tQK\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR.",
  ];
  return new Uint8Array(Buffer.from(parts.join(""), "latin1"));
}

async function read(records: ReadonlyArray<readonly [string, Uint8Array]>): Promise<unknown> {
  const bytes = await zipInMemory(records);
  return readTorchCheckpoint(memorySource(bytes, "ckpt.pt"));
}

async function failure(records: ReadonlyArray<readonly [string, Uint8Array]> | Uint8Array): Promise<Record<string, unknown>> {
  const bytes = records instanceof Uint8Array ? records : await zipInMemory(records);
  const error = await readTorchCheckpoint(memorySource(bytes, "ckpt.pt")).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(Error);
  expect((error as Error).message).toContain("ckpt.pt");
  return error as Record<string, unknown>;
}

describe("checkpoint structure errors", () => {
  test("a well-formed crafted archive reads; its TensorRef points at data/0", async () => {
    const ck = (await read([
      ["x/data.pkl", PKL],
      ["x/data/0", DATA],
      ["x/version", VERSION],
    ])) as Awaited<ReturnType<typeof readTorchCheckpoint>>;
    const w = ck.root instanceof PyDict ? ck.root.get("w") : undefined;
    expect(w).toBeInstanceOf(TensorRef);
    expect(w instanceof TensorRef && w.contiguousRange()).toEqual({ offset: ck.records.get("data/0")?.offset, length: 8 });
    expect([...ck.records.keys()]).toEqual(["data.pkl", "data/0", "version"]);
  });

  test("missing data.pkl, version or storage record", async () => {
    expect(await failure([["x/data/0", DATA], ["x/version", VERSION]])).toMatchObject({ code: "torch.missing-record", record: "x/data.pkl" });
    expect(await failure([["x/data.pkl", PKL], ["x/data/0", DATA]])).toMatchObject({ code: "torch.missing-record", record: "version" });
    expect(await failure([["x/data.pkl", PKL], ["x/version", VERSION]])).toMatchObject({ code: "torch.missing-record", record: "x/data/0" });
  });

  test("version must be an integer 1..10 (.data/version also accepted); byteorder must be little", async () => {
    for (const bad of ["0", "11", "x", "", "3".repeat(100)]) {
      expect(await failure([["x/data.pkl", PKL], ["x/data/0", DATA], ["x/version", ascii(bad)]])).toMatchObject({ code: "torch.bad-version" });
    }
    for (const good of ["1", "3", "10\n"]) {
      await expect(read([["x/data.pkl", PKL], ["x/data/0", DATA], ["x/version", ascii(good)]])).resolves.toBeDefined();
    }
    await expect(read([["x/data.pkl", PKL], ["x/data/0", DATA], ["x/.data/version", VERSION]])).resolves.toBeDefined();
    await expect(read([["x/data.pkl", PKL], ["x/byteorder", ascii("little")], ["x/data/0", DATA], ["x/version", VERSION]])).resolves.toBeDefined();
    expect(await failure([["x/data.pkl", PKL], ["x/byteorder", ascii("big")], ["x/data/0", DATA], ["x/version", VERSION]])).toMatchObject({
      code: "torch.bad-version",
      record: "x/byteorder",
    });
  });

  test("storage record size must equal numel * itemsize", async () => {
    for (const size of [4, 12]) {
      expect(await failure([["x/data.pkl", PKL], ["x/data/0", new Uint8Array(size)], ["x/version", VERSION]])).toMatchObject({
        code: "torch.storage-size-mismatch",
        key: "0",
        expected: 8,
        found: size,
      });
    }
  });

  test("all records under one folder", async () => {
    expect(await failure([["x/data.pkl", PKL], ["x/data/0", DATA], ["y/version", VERSION]])).toMatchObject({ code: "torch.bad-layout" });
    expect(await failure([["data.pkl", PKL], ["version", VERSION]])).toMatchObject({ code: "torch.bad-layout" });
    expect(await failure([])).toMatchObject({ code: "torch.bad-layout" });
  });

  test("unsupported storage classes, views past their storage, compressed storages", async () => {
    expect(await failure([["x/data.pkl", tensorPickle("ComplexDoubleStorage", 2)], ["x/data/0", new Uint8Array(32)], ["x/version", VERSION]])).toMatchObject({ code: "torch.bad-tensor" });
    expect(await failure([["x/data.pkl", tensorPickle("FloatStorage", 1)], ["x/data/0", new Uint8Array(4)], ["x/version", VERSION]])).toMatchObject({ code: "torch.bad-tensor" });
    await expect(read([["x/data.pkl", tensorPickle("FloatStorage", 2)], ["x/data/0", new Uint8Array(8)], ["x/version", VERSION]])).resolves.toBeDefined();
    const bytes = await zipInMemory([["x/data.pkl", PKL], ["x/data/0", DATA], ["x/version", VERSION]]);
    const view = Buffer.from(bytes);
    const second = view.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), view.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])) + 4);
    expect(view.readUInt32LE(second)).toBe(SIG.central);
    expect(await failure(patch(bytes, second + CENTRAL.method, 8, 2))).toMatchObject({ code: "torch.zip-unsupported" });
  });

  test("a real torch file whose data.pkl was re-stored deflated still reads (torch.load accepts it too)", async () => {
    const dir = await makeTempDir();
    const path = join(dir, "deflated.pt");
    runPython(
      "import sys, io, zipfile, torch\nb = io.BytesIO()\ntorch.save({'w': torch.arange(3)}, b)\n" +
        "src = zipfile.ZipFile(b)\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n" +
        "  for n in src.namelist():\n    z.writestr(n, src.read(n), compress_type=zipfile.ZIP_DEFLATED if n.endswith('data.pkl') else zipfile.ZIP_STORED)\n" +
        "print(torch.load(sys.argv[1])['w'].tolist())",
      [path],
    );
    const ck = await readTorchCheckpointFile(path);
    expect(ck.prefix).toBe("archive");
    expect(ck.root instanceof PyDict && ck.root.get("w")).toBeInstanceOf(TensorRef);
  });
});
