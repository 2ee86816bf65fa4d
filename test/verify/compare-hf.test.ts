import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openSafetensorsFolder } from "../../src/formats/safetensors/folder.js";
import { writeSafetensors, type TensorPayload } from "../../src/formats/safetensors/writer.js";
import { byteLengthOf, type TensorSpec } from "../../src/model/tensor.js";
import { compareHfFolders } from "../../src/verify/compare-hf.js";
import { flipByte } from "../support/flip-byte.js";
import { makeTempDir } from "../support/tmpdir.js";
import { REPO } from "../support/tiny-model.js";

/** Larger than one read of compare-hf (1 MiB), so that a difference can lie past the first. */
const BIG: TensorSpec = { name: "model.big.weight", dtype: "BF16", shape: [1024, 768] };
const SMALL: TensorSpec = { name: "model.norm.weight", dtype: "F32", shape: [4] };

/** The same deterministic bytes for a tensor name in every folder. */
function payload(spec: TensorSpec): TensorPayload {
  const seed = spec.name.length;
  return {
    spec,
    data: async function* () {
      const bytes = new Uint8Array(byteLengthOf(spec));
      for (let i = 0; i < bytes.byteLength; i++) {
        bytes[i] = (i * 31 + seed) & 0xff;
      }
      yield bytes;
    },
  };
}

/** A folder of safetensors files, each given as its tensors. */
async function folder(files: Record<string, readonly TensorSpec[]>): Promise<string> {
  const dir = join(await makeTempDir(), "hf");
  await mkdir(dir);
  for (const [name, specs] of Object.entries(files)) {
    await writeSafetensors(join(dir, name), specs.map(payload));
  }
  return dir;
}

/** Where element `element` of tensor `name` lies in its file of `dir`. */
async function placeOf(dir: string, name: string, element: number): Promise<{ file: string; at: number }> {
  const checkpoint = await openSafetensorsFolder(dir);
  try {
    const tensor = checkpoint.tensors.get(name);
    if (tensor === undefined) {
      throw new Error(`no ${name} in ${dir}`);
    }
    return { file: tensor.file, at: tensor.dataOffset + element * 2 };
  } finally {
    await checkpoint.close();
  }
}

describe("compareHfFolders (verify <hf-dir> <hf-dir>)", () => {
  it("finds two folders of the same tensors, sharded differently, equal and counts every byte", async () => {
    const a = await folder({ "model.safetensors": [BIG, SMALL] });
    const b = await folder({ "model-00001-of-00002.safetensors": [SMALL], "model-00002-of-00002.safetensors": [BIG] });
    const report = await compareHfFolders(a, b);
    expect(report.differences).toEqual([]);
    expect(report.ok).toBe(true);
    expect([report.tensorsChecked, report.filesChecked, report.bytesCompared]).toEqual([2, 3, byteLengthOf(BIG) + byteLengthOf(SMALL)]);
  });

  it("names the first differing element and its index, past the first read of a tensor", async () => {
    const a = await folder({ "model.safetensors": [BIG, SMALL] });
    const b = await folder({ "model-00001-of-00002.safetensors": [SMALL], "model-00002-of-00002.safetensors": [BIG] });
    const first = (1 << 19) + 777; // bf16 elements: the second MiB
    for (const element of [first + 300, first]) {
      const { file, at } = await placeOf(b, BIG.name, element);
      await flipByte(file, at + 1);
    }
    const report = await compareHfFolders(a, b);
    expect(report.ok).toBe(false);
    expect(report.differences).toEqual([
      { file: b, key: BIG.name, hfTensors: [BIG.name], problem: `bytes differ from element ${first} (index [${Math.floor(first / 768)}, ${first % 768}])` },
    ]);
  });

  it("reports a tensor missing on either side, and one of another dtype or shape", async () => {
    const onlyA: TensorSpec = { name: "model.only_a", dtype: "BF16", shape: [2] };
    const onlyB: TensorSpec = { name: "model.only_b", dtype: "BF16", shape: [2] };
    const a = await folder({ "model.safetensors": [SMALL, onlyA] });
    const b = await folder({ "model.safetensors": [{ ...SMALL, shape: [2, 2] }, onlyB] });
    const report = await compareHfFolders(a, b);
    expect(report.differences).toEqual([
      { file: b, key: "model.norm.weight", hfTensors: ["model.norm.weight"], problem: "F32 [2, 2]; expected F32 [4]" },
      { file: b, key: "model.only_a", hfTensors: ["model.only_a"], problem: `missing (present only in ${a})` },
      { file: a, key: "model.only_b", hfTensors: ["model.only_b"], problem: `missing (present only in ${b})` },
    ]);
  });
});

describe("compareHfFolders in worker threads", () => {
  /** The compiled module: its worker script exists only in dist/. */
  type Compare = typeof compareHfFolders;
  const built = async (): Promise<Compare> => ((await import(join(REPO, "dist", "verify", "compare-hf.js"))) as { compareHfFolders: Compare }).compareHfFolders;
  const JOB = 256 << 10; // BIG is 1.5 MiB: six jobs

  it("counts every byte, as one thread does", async () => {
    const compare = await built();
    const a = await folder({ "model.safetensors": [BIG, SMALL] });
    const b = await folder({ "model-00001-of-00002.safetensors": [SMALL], "model-00002-of-00002.safetensors": [BIG] });
    const threaded = await compare(a, b, { jobs: 3, threads: true, jobBytes: JOB });
    expect([threaded.ok, threaded.threads, threaded.bytesCompared]).toEqual([true, 3, byteLengthOf(BIG) + byteLengthOf(SMALL)]);
  });

  it("names the lowest differing element of a tensor cut across threads, as one thread does", async () => {
    const compare = await built();
    const a = await folder({ "model.safetensors": [BIG, SMALL] });
    const b = await folder({ "model.safetensors": [SMALL, BIG] });
    const lower = (JOB / 2) * 2 + 5; // bf16 elements: in the third job of BIG
    for (const element of [(JOB / 2) * 5 + 9, lower]) {
      const { file, at } = await placeOf(b, BIG.name, element);
      await flipByte(file, at);
    }
    const single = await compare(a, b, { jobs: 1, jobBytes: JOB });
    const threaded = await compare(a, b, { jobs: 3, threads: true, jobBytes: JOB });
    expect(threaded.threads).toBe(3);
    expect(threaded.differences).toEqual(single.differences);
    expect(threaded.differences).toEqual([
      { file: b, key: BIG.name, hfTensors: [BIG.name], problem: `bytes differ from element ${lower} (index [${Math.floor(lower / 768)}, ${lower % 768}])` },
    ]);
    expect(threaded.bytesCompared).toBe(single.bytesCompared);
  });
});
