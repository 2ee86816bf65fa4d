import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { PlannedTensor } from "../../src/mapping/plan.js";
import { viewOf, type Rect } from "../../src/mapping/rect.js";
import { column, replicated, row, vocab, type ShardPiece } from "../../src/mapping/transforms/tp-split.js";
import { byteLengthOf, dtypeBytes, type Dtype, type TensorSpec } from "../../src/model/tensor.js";
import { planByteChecks, type SourceCheck, type StoredBytes } from "../../src/verify/byte-checks.js";
import { checkSource, LowestDifferences, type CompareBuffers, type PieceDifference } from "../../src/verify/compare-source.js";
import { OpenFiles } from "../../src/verify/open-files.js";
import { collect, MemorySpace, seededBytes } from "../support/memory-space.js";
import { flipByte } from "../support/flip-byte.js";
import { makeTempDir } from "../support/tmpdir.js";

/** A MemorySpace that counts the bytes read from it. */
class CountingSpace extends MemorySpace {
  bytesRead = 0;
  override async readRect(name: string, rect: Rect): Promise<Uint8Array> {
    const bytes = await super.readRect(name, rect);
    this.bytesRead += bytes.byteLength;
    return bytes;
  }
}

/** Bytes before each stored tensor in its file, as a checkpoint's zip headers would be. */
const LEAD = 100;

interface Scene {
  space: CountingSpace;
  stored: StoredBytes[];
  /** The file of the i-th stored tensor, and where element (row, col) of it lies in that file. */
  byteOf(i: number, row: number, col: number): { path: string; at: number };
}

/** HF tensor `hf` in a space, and each shard written the way the writer derives it, one file per shard. */
async function scene(hf: TensorSpec, shards: readonly ShardPiece[], dtype: Dtype = hf.dtype): Promise<Scene> {
  const dir = await makeTempDir();
  const space = new CountingSpace();
  const view = viewOf(hf.shape);
  space.add(hf.name, hf.dtype, view, seededBytes(byteLengthOf(hf), 7));
  const stored: StoredBytes[] = [];
  for (const [i, shard] of shards.entries()) {
    const tensor: PlannedTensor = { kind: "tensor", name: "weight", dtype, shape: shard.shape, view: viewOf(shard.shape), segments: shard.segments };
    const bytes = await collect(tensor, space);
    const path = join(dir, `rank${i}.pt`);
    await writeFile(path, Buffer.concat([Buffer.alloc(LEAD, 0xee), bytes, Buffer.alloc(LEAD, 0xee)]));
    stored.push({ path, label: `rank${i}`, model: "model", key: "model/weight", offset: LEAD, tensor });
  }
  space.bytesRead = 0;
  return {
    space,
    stored,
    byteOf: (i, r, c) => {
      const s = stored[i] as StoredBytes;
      return { path: s.path, at: LEAD + (r * s.tensor.view.cols + c) * dtypeBytes(dtype) };
    },
  };
}

async function check(s: Scene): Promise<{ differences: Awaited<ReturnType<typeof checkSource>>; bytesRead: number }> {
  const checks = planByteChecks(s.stored);
  expect(checks.map((c) => c.kind)).toEqual(["source"]);
  const files = new OpenFiles();
  const buffers: CompareBuffers = {};
  try {
    s.space.bytesRead = 0;
    const differences = await checkSource(checks[0] as SourceCheck, s.space, files, buffers);
    return { differences, bytesRead: s.space.bytesRead };
  } finally {
    await files.close();
  }
}

/** The checks of a scene cut into windows of at most `maxBytes` stored bytes, run one by one (as threads would), their differences merged as verify merges them. */
async function checkInWindows(s: Scene, maxBytes: number): Promise<{ windows: number; differences: PieceDifference[]; bytesRead: number }> {
  const checks = planByteChecks(s.stored, { maxCheckBytes: maxBytes }) as SourceCheck[];
  const found = new LowestDifferences();
  const files = new OpenFiles();
  try {
    s.space.bytesRead = 0;
    for (const c of checks) {
      (await checkSource(c, s.space, files, {})).forEach((d) => found.note(d));
    }
    return { windows: checks.length, differences: found.values(), bytesRead: s.space.bytesRead };
  } finally {
    await files.close();
  }
}

function flip({ path, at }: { path: string; at: number }): Promise<void> {
  return flipByte(path, at, 0x01);
}

describe("checkSource: every piece cut from one HF tensor, in one pass over it", () => {
  // wider than one 1 MiB band, so that bands and stored chunks end mid-tensor
  const w2: TensorSpec = { name: "w2", dtype: "BF16", shape: [600, 1536] };

  it("row-parallel slices: each HF byte read once for all TP ranks; a flipped byte named by element and source", async () => {
    const s = await scene(w2, [0, 1, 2, 3].map((r) => row(w2, 4, r)));
    expect(await check(s)).toEqual({ differences: [], bytesRead: byteLengthOf(w2) });
    await flip(s.byteOf(2, 433, 5));
    const { differences } = await check(s);
    expect(differences).toEqual([
      {
        label: "rank2",
        key: "model/weight",
        element: 433 * 384 + 5,
        problem: `bytes differ from element ${433 * 384 + 5} on (row 433, col 5); that element comes from w2 [433, 773]`,
      },
    ]);
  });

  it("replicas (dense weights in every EP rank) and column slices: HF read once, every replica compared", async () => {
    const norm: TensorSpec = { name: "norm", dtype: "F32", shape: [70000] };
    const replicas = await scene(norm, [replicated(norm), replicated(norm), replicated(norm)]);
    expect(await check(replicas)).toEqual({ differences: [], bytesRead: byteLengthOf(norm) });
    await flip(replicas.byteOf(2, 69999, 0));
    expect((await check(replicas)).differences.map((d) => [d.label, d.element])).toEqual([["rank2", 69999]]);

    const fc1 = await scene(w2, [column(w2, 2, 0), column(w2, 2, 1)]);
    await flip(fc1.byteOf(1, 0, 0));
    expect(await check(fc1)).toEqual({ differences: [expect.objectContaining({ label: "rank1", element: 0 })], bytesRead: byteLengthOf(w2) });
  });

  it("vocab padding rows are compared with the last real row they repeat", async () => {
    const embedding: TensorSpec = { name: "embed", dtype: "BF16", shape: [13, 8] };
    const s = await scene(embedding, [0, 1].map((r) => vocab(embedding, 2, r, 16)));
    expect((await check(s)).differences).toEqual([]);
    await flip(s.byteOf(1, 7, 3)); // rank 1 holds rows 8..15: 8..12 real, 13..15 padding
    const { differences } = await check(s);
    expect(differences).toEqual([expect.objectContaining({ label: "rank1", element: 7 * 8 + 3 })]);
    expect(differences[0]?.problem).toContain("vocab padding row 7 (a copy of embed row 12)");
  });

  it("names the lowest differing element of a stored tensor, whichever of its pieces is compared first", async () => {
    // two column halves of one HF tensor, stored swapped side by side: the left piece is compared first
    const w: TensorSpec = { name: "w", dtype: "BF16", shape: [2, 8] };
    const swapped: ShardPiece = {
      shape: [2, 8],
      segments: [
        { source: "w", src: { row: 0, col: 4, rows: 2, cols: 4 }, dst: { row: 0, col: 0, rows: 2, cols: 4 }, transposed: false },
        { source: "w", src: { row: 0, col: 0, rows: 2, cols: 4 }, dst: { row: 0, col: 4, rows: 2, cols: 4 }, transposed: false },
      ],
    };
    const s = await scene(w, [swapped]);
    await flip(s.byteOf(0, 1, 1)); // element 9, in the left piece
    await flip(s.byteOf(0, 0, 5)); // element 5, in the right piece
    expect((await check(s)).differences.map((d) => d.element)).toEqual([5]);
  });

  it("in windows of rows: each HF byte still read once, and a stored tensor's lowest difference found across windows", async () => {
    const s = await scene(w2, [0, 1, 2, 3].map((r) => row(w2, 4, r)));
    const whole = byteLengthOf(w2);
    expect(await checkInWindows(s, whole / 7)).toEqual({ windows: 7, differences: [], bytesRead: whole });
    await flip(s.byteOf(1, 590, 7)); // the last window
    await flip(s.byteOf(1, 100, 3)); // the second: the one reported
    await flip(s.byteOf(3, 599, 383)); // another stored tensor: its own difference
    const inWindows = await checkInWindows(s, whole / 7);
    expect(inWindows.differences.map((d) => [d.label, d.element])).toEqual([
      ["rank1", 100 * 384 + 3],
      ["rank3", 599 * 384 + 383],
    ]);
    expect(inWindows.differences).toEqual(expect.arrayContaining((await check(s)).differences));
  });

  it("in windows of rows: vocab padding checked once, in the first", async () => {
    const embedding: TensorSpec = { name: "embed", dtype: "BF16", shape: [13, 8] };
    const s = await scene(embedding, [0, 1].map((r) => vocab(embedding, 2, r, 16)));
    const windows = await checkInWindows(s, 64);
    expect(windows).toEqual({ windows: 4, differences: [], bytesRead: byteLengthOf(embedding) + 8 * 2 });
    await flip(s.byteOf(1, 6, 0)); // rank 1 row 6: padding, a copy of embed row 12
    expect((await checkInWindows(s, 64)).differences).toEqual([expect.objectContaining({ label: "rank1", element: 6 * 8 })]);
  });

  it("compares with the HF bytes cast to the stored dtype", async () => {
    const s = await scene(w2, [row(w2, 2, 0), row(w2, 2, 1)], "F32");
    expect((await check(s)).differences).toEqual([]);
    await flip(s.byteOf(1, 599, 767));
    expect((await check(s)).differences.map((d) => d.element)).toEqual([600 * 768 - 1]);
  });
});
