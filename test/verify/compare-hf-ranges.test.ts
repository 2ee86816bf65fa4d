import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeSafetensors } from "../../src/formats/safetensors/writer.js";
import { ConvertError } from "../../src/errors.js";
import { InputChangedError } from "../../src/verify/byte-compare.js";
import { openFolderPair, planCompareJobs, runCompareJob } from "../../src/verify/compare-hf-ranges.js";
import { makeTempDir } from "../support/tmpdir.js";

describe("planCompareJobs", () => {
  it("puts small tensors together up to the job size and cuts a larger one into a job per range", () => {
    const jobs = planCompareJobs(
      [
        { name: "a", byteLength: 40 },
        { name: "b", byteLength: 70 },
        { name: "c", byteLength: 250 },
        { name: "d", byteLength: 10 },
        { name: "e", byteLength: 100 },
      ],
      100,
    );
    expect(jobs).toEqual([
      [
        { name: "a", from: 0, to: 40 },
        { name: "b", from: 0, to: 70 },
      ],
      [{ name: "c", from: 0, to: 100 }],
      [{ name: "c", from: 100, to: 200 }],
      [{ name: "c", from: 200, to: 250 }],
      [
        { name: "d", from: 0, to: 10 },
        { name: "e", from: 0, to: 100 },
      ],
    ]);
  });

  it("covers every byte of every tensor once, in order", () => {
    const tensors = Array.from({ length: 40 }, (_, i) => ({ name: `t${i}`, byteLength: ((i * 7919) % 300) + 1 }));
    const ranges = planCompareJobs(tensors, 64).flat();
    for (const t of tensors) {
      const mine = ranges.filter((r) => r.name === t.name);
      expect(mine[0]?.from).toBe(0);
      mine.forEach((r, i) => expect(r.from).toBe(i === 0 ? 0 : mine[i - 1]?.to));
      expect(mine.at(-1)?.to).toBe(t.byteLength);
    }
    expect(ranges.map((r) => r.name).filter((n, i, all) => all.indexOf(n) === i)).toEqual(tensors.map((t) => t.name));
  });
});

describe("runCompareJob", () => {
  async function folderOf(bytes: Uint8Array): Promise<string> {
    const dir = join(await makeTempDir(), "hf");
    await mkdir(dir);
    const spec = { name: "w", dtype: "BF16", shape: [bytes.byteLength / 2] } as const;
    await writeSafetensors(join(dir, "model.safetensors"), [{ spec, data: async function* () { yield bytes; } }]);
    return dir;
  }

  it("counts the bytes of a range up to its first difference, and names that element", async () => {
    const left = new Uint8Array(64).map((_, i) => i);
    const right = left.slice();
    right[45] = 0xff; // element 22, in the range 32..64
    const opened = await openFolderPair(await folderOf(left), await folderOf(right));
    try {
      const result = await runCompareJob(
        [
          { name: "w", from: 0, to: 32 },
          { name: "w", from: 32, to: 64 },
        ],
        opened.context,
      );
      expect(result).toEqual({ bytes: 32 + 13, differences: [{ name: "w", element: 22, problem: "bytes differ from element 22 (index [22])" }] });
    } finally {
      await opened.close();
    }
  });

  it("fails with an InputChangedError naming the folder and tensor when a job's tensor is not there", async () => {
    const bytes = new Uint8Array(8);
    const a = await folderOf(bytes);
    const opened = await openFolderPair(a, await folderOf(bytes));
    try {
      const error = await runCompareJob([{ name: "gone", from: 0, to: 8 }], opened.context).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InputChangedError);
      expect(error).toBeInstanceOf(ConvertError);
      expect((error as Error).message).toContain(`${a}: gone is no longer the tensor`);
    } finally {
      await opened.close();
    }
  });
});
