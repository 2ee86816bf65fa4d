import { describe, expect, it } from "vitest";
import type { PlannedTensor } from "../../src/mapping/plan.js";
import { colsRect, rowsRect, viewOf, type Segment } from "../../src/mapping/rect.js";
import { planByteChecks, splittable, type StoredBytes } from "../../src/verify/byte-checks.js";

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
    const checks = planByteChecks([stored("r0", split), stored("r1", split)], (name) => (name === "a" ? 0 : 1));
    expect(checks.map((c) => (c.kind === "source" ? [c.source, c.pieces.map((p) => [p.stored.path, p.segment.dst.row])] : c.kind))).toEqual([
      ["a", [["r0", 2], ["r1", 2]]],
      ["b", [["r0", 0], ["r1", 0]]],
    ]);
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
