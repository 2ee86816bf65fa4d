import { describe, expect, it } from "vitest";
import type { PlannedTensor } from "../../src/mapping/plan.js";
import { colsRect, rowsRect, viewOf, type Segment } from "../../src/mapping/rect.js";
import { planByteChecks, splittable, type SourceCheck, type StoredBytes, type StoredPiece } from "../../src/verify/byte-checks.js";

function tensor(shape: number[], segments: Segment[]): PlannedTensor {
  return { kind: "tensor", name: "t", dtype: "BF16", shape, view: viewOf(shape), segments };
}

const v = viewOf([4, 6]);
const halfRows = (source: string, at: number): Segment => ({ source, src: rowsRect(v, 0, 2), dst: rowsRect(v, at, 2), transposed: false });

describe("splittable: a tensor is checked piece by piece only when its pieces cover it exactly", () => {
  it("accepts row and column tilings and padding repeats", () => {
    expect(splittable(tensor([4, 6], [halfRows("a", 0), halfRows("b", 2)]))).toBe(true);
    const left: Segment = { source: "a", src: colsRect(v, 0, 3), dst: colsRect(v, 0, 3), transposed: false };
    const right: Segment = { source: "b", src: colsRect(v, 3, 3), dst: colsRect(v, 3, 3), transposed: false };
    expect(splittable(tensor([4, 6], [left, right]))).toBe(true);
    const padding: Segment = { source: "a", src: rowsRect(v, 1, 1), dst: rowsRect(v, 2, 2), transposed: false, repeat: 2 };
    expect(splittable(tensor([4, 6], [halfRows("a", 0), padding]))).toBe(true);
  });

  it("refuses transposed pieces, gaps, overlaps and pieces outside the tensor", () => {
    const t: Segment = { source: "a", src: { row: 0, col: 0, rows: 6, cols: 4 }, dst: { row: 0, col: 0, rows: 4, cols: 6 }, transposed: true };
    expect(splittable(tensor([4, 6], [t]))).toBe(false);
    expect(splittable(tensor([4, 6], [halfRows("a", 0)]))).toBe(false);
    expect(splittable(tensor([4, 6], [halfRows("a", 0), halfRows("b", 1), halfRows("c", 3)]))).toBe(false);
    expect(splittable(tensor([4, 6], [halfRows("a", 0), halfRows("b", 3)]))).toBe(false);
  });
});

describe("planByteChecks", () => {
  const stored = (path: string, t: PlannedTensor, contiguous = true): StoredBytes => ({ path, label: path, model: "model", key: "model/t", offset: contiguous ? 64 : undefined, tensor: t });

  it("groups the pieces of every stored tensor by the HF tensor they come from, in shard order", () => {
    const split = tensor([4, 6], [halfRows("b", 0), halfRows("a", 2)]);
    const checks = planByteChecks([stored("r0", split), stored("r1", split)], { sourceOrder: (name) => (name === "a" ? 0 : 1) });
    expect(checks.map((c) => (c.kind === "source" ? [c.source, c.pieces.map((p) => [p.stored.path, p.segment.dst.row])] : c.kind))).toEqual([
      ["a", [["r0", 2], ["r1", 2]]],
      ["b", [["r0", 0], ["r1", 0]]],
    ]);
  });

  it("cuts the pieces of a large HF tensor into windows of its rows, in order, each piece where its rows are", () => {
    // HF "a" [8, 6] in two TP row halves, each in two EP replicas: 4 pieces of 48 bytes
    const hf = viewOf([8, 6]);
    const half = viewOf([4, 6]);
    const rowsOf = (at: number): Segment => ({ source: "a", src: rowsRect(hf, at, 4), dst: rowsRect(half, 0, 4), transposed: false });
    const pieces = [0, 4].flatMap((at) => ["e0", "e1"].map((ep) => stored(`${ep}-tp${at}`, tensor([4, 6], [rowsOf(at)]))));
    const windows = (maxBytes: number): [unknown, string[]][] =>
      planByteChecks(pieces, { maxCheckBytes: maxBytes }).map((c) => [(c as SourceCheck).rows, (c as SourceCheck).pieces.map((p) => p.stored.path)]);
    expect(windows(192)).toEqual([[{ first: 0, end: 8 }, ["e0-tp0", "e1-tp0", "e0-tp4", "e1-tp4"]]]);
    expect(windows(64)).toEqual([
      [{ first: 0, end: 2 }, ["e0-tp0", "e1-tp0"]],
      [{ first: 2, end: 5 }, ["e0-tp0", "e1-tp0", "e0-tp4", "e1-tp4"]],
      [{ first: 5, end: 8 }, ["e0-tp4", "e1-tp4"]],
    ]);
    // never more windows than rows
    expect(windows(1).map(([rows]) => rows)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((r) => ({ first: r, end: r + 1 })));
  });

  it("puts a vocab padding piece, compared apart from the row bands, in the first window only", () => {
    const hf = viewOf([5, 4]);
    const padded = viewOf([8, 4]);
    const real: Segment = { source: "e", src: rowsRect(hf, 0, 5), dst: rowsRect(padded, 0, 5), transposed: false };
    const padding: Segment = { source: "e", src: rowsRect(hf, 4, 1), dst: rowsRect(padded, 5, 3), transposed: false, repeat: 3 };
    const checks = planByteChecks([stored("r0", tensor([8, 4], [real, padding]))], { maxCheckBytes: 8 }) as SourceCheck[];
    const repeats = (c: SourceCheck): StoredPiece[] => c.pieces.filter((p) => p.segment.repeat !== undefined);
    expect(checks.map((c) => c.rows)).toEqual([0, 1, 2, 3, 4].map((r) => ({ first: r, end: r + 1 })));
    expect(checks.map((c) => repeats(c).length)).toEqual([1, 0, 0, 0, 0]);
    expect(checks.every((c) => c.pieces.some((p) => p.segment === real))).toBe(true);
  });

  it("checks whole, file by file, what pieces cannot cover: strided storage and transposed pieces", () => {
    const t: Segment = { source: "a", src: { row: 0, col: 0, rows: 6, cols: 4 }, dst: { row: 0, col: 0, rows: 4, cols: 6 }, transposed: true };
    const checks = planByteChecks([stored("r0", tensor([4, 6], [t])), stored("r1", tensor([4, 6], [halfRows("a", 0), halfRows("b", 2)]), false)]);
    expect(checks).toEqual([
      { kind: "whole", path: "r0", label: "r0", tensors: [expect.objectContaining({ key: "model/t", model: "model" })] },
      { kind: "whole", path: "r1", label: "r1", tensors: [expect.objectContaining({ key: "model/t", model: "model" })] },
    ]);
  });
});
