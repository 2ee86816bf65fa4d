import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openSafetensorsFolder } from "../../src/formats/safetensors/folder.js";
import { writeSafetensors } from "../../src/formats/safetensors/writer.js";
import { ConvertError } from "../../src/errors.js";
import { openCompareContext, planCompareJobs, runCompareJob, type TensorPair } from "../../src/verify/compare-hf-ranges.js";
import type { StoredTensor } from "../../src/model/tensor.js";
import { makeTempDir } from "../support/tmpdir.js";

/** A pair of U8 tensors of `byteLength` bytes, at made-up places in two folders' shards. */
function pair(name: string, byteLength: number, at = 0): TensorPair {
  const stored = (file: string): StoredTensor => ({ name, dtype: "U8", shape: [byteLength], file, dataOffset: 100 + at, byteLength });
  return { left: stored("a/model.safetensors"), right: stored("b/model-00001-of-00002.safetensors") };
}

describe("planCompareJobs", () => {
  it("puts small tensors together up to the job size and cuts a larger one into a job per range", () => {
    const jobs = planCompareJobs([pair("a", 40), pair("b", 70), pair("c", 250), pair("d", 10), pair("e", 100)], 100);
    expect(jobs.map((job) => job.map((r) => [r.name, r.from, r.to]))).toEqual([
      [
        ["a", 0, 40],
        ["b", 0, 70],
      ],
      [["c", 0, 100]],
      [["c", 100, 200]],
      [["c", 200, 250]],
      [
        ["d", 0, 10],
        ["e", 0, 100],
      ],
    ]);
  });

  it("gives every range where its tensor lies in both folders, its dtype and its shape", () => {
    const [[range]] = planCompareJobs([pair("w", 40, 24)], 100) as [[unknown]];
    expect(range).toEqual({
      name: "w",
      from: 0,
      to: 40,
      dtype: "U8",
      shape: [40],
      left: { file: "a/model.safetensors", dataOffset: 124 },
      right: { file: "b/model-00001-of-00002.safetensors", dataOffset: 124 },
    });
  });

  it("covers every byte of every tensor once, in order", () => {
    const tensors = Array.from({ length: 40 }, (_, i) => pair(`t${i}`, ((i * 7919) % 300) + 1));
    const ranges = planCompareJobs(tensors, 64).flat();
    for (const { left: t } of tensors) {
      const mine = ranges.filter((r) => r.name === t.name);
      expect(mine[0]?.from).toBe(0);
      mine.forEach((r, i) => expect(r.from).toBe(i === 0 ? 0 : mine[i - 1]?.to));
      expect(mine.at(-1)?.to).toBe(t.byteLength);
    }
    expect(ranges.map((r) => r.name).filter((n, i, all) => all.indexOf(n) === i)).toEqual(tensors.map((t) => t.left.name));
  });
});

describe("runCompareJob", () => {
  async function folderOf(bytes: Uint8Array, padding = 0): Promise<string> {
    const dir = join(await makeTempDir(), "hf");
    await mkdir(dir);
    const specs = [
      { spec: { name: "pad", dtype: "U8", shape: [padding] } as const, data: async function* () { yield new Uint8Array(padding); } },
      { spec: { name: "w", dtype: "BF16", shape: [bytes.byteLength / 2] } as const, data: async function* () { yield bytes; } },
    ];
    await writeSafetensors(join(dir, "model.safetensors"), padding === 0 ? specs.slice(1) : specs);
    return dir;
  }

  async function pairOf(a: string, b: string): Promise<TensorPair> {
    const [left, right] = [await openSafetensorsFolder(a), await openSafetensorsFolder(b)];
    await Promise.all([left.close(), right.close()]);
    return { left: left.tensors.get("w") as StoredTensor, right: right.tensors.get("w") as StoredTensor };
  }

  it("reads each folder's bytes where its job says, counts them up to the first difference, and names that element", async () => {
    const left = new Uint8Array(64).map((_, i) => i);
    const right = left.slice();
    right[45] = 0xff; // element 22, in the range 32..64
    // the tensor lies at another offset in each folder
    const ranges = planCompareJobs([await pairOf(await folderOf(left, 24), await folderOf(right))], 32).flat();
    expect(ranges[0]?.left.dataOffset).not.toBe(ranges[0]?.right.dataOffset);
    const opened = openCompareContext();
    try {
      const result = await runCompareJob(ranges, opened.context);
      expect(result).toEqual({ bytes: 32 + 13, differences: [{ name: "w", element: 22, problem: "bytes differ from element 22 (index [22])" }] });
    } finally {
      await opened.close();
    }
  });

  it("fails with an error naming the shard when a range lies beyond its end", async () => {
    const bytes = new Uint8Array(8);
    const a = await folderOf(bytes);
    const ranges = planCompareJobs([await pairOf(a, await folderOf(bytes))], 32).flat();
    const beyond = ranges.map((r) => ({ ...r, to: r.to + 64 }));
    const opened = openCompareContext();
    try {
      const error = await runCompareJob(beyond, opened.context).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConvertError);
      expect((error as Error).message).toContain(join(a, "model.safetensors"));
    } finally {
      await opened.close();
    }
  });
});
