import { describe, expect, it } from "vitest";
import { colsRect, fullRect, intersect, mapSrcToDst, matrixView, placeSegment, rectAt, rowsRect, viewOf, type Segment } from "../../src/mapping/rect.js";

describe("interned rectangles and views", () => {
  it("gives one object per distinct value, whichever helper makes it", () => {
    const view = viewOf([8, 4]);
    expect(viewOf([2, 4, 4])).toBe(view);
    expect(matrixView(8, 4)).toBe(view);
    expect(rowsRect(view, 0, 8)).toBe(fullRect(view));
    expect(colsRect(view, 0, 4)).toBe(fullRect(view));
    expect(intersect(rectAt(0, 0, 4, 4), rectAt(2, 0, 6, 4))).toBe(rectAt(2, 0, 2, 4));
    expect(rectAt(2, 0, 2, 4)).toEqual({ row: 2, col: 0, rows: 2, cols: 4 });
    expect(rectAt(0, 2, 4, 2)).not.toBe(rectAt(2, 0, 2, 4));
  });

  it("keeps values apart that a packed key would mix up", () => {
    const big = 2 ** 26;
    expect(rectAt(1, -1, 1, 1)).toEqual({ row: 1, col: -1, rows: 1, cols: 1 });
    expect(rectAt(0, big - 1, 1, 1)).toEqual({ row: 0, col: big - 1, rows: 1, cols: 1 });
    expect(rectAt(0, big, 1, 1)).toEqual({ row: 0, col: big, rows: 1, cols: 1 });
    expect(rectAt(1, 0, 1, 1)).toEqual({ row: 1, col: 0, rows: 1, cols: 1 });
    expect(rectAt(0.5, 0, 1, 1)).toEqual({ row: 0.5, col: 0, rows: 1, cols: 1 });
    expect(matrixView(4, 3)).toEqual({ rows: 4, cols: 3 });
    expect(matrixView(1, 3 * big + 3)).toEqual({ rows: 1, cols: 3 * big + 3 }); // packed, it would be (4, 3)
    expect(matrixView(big, 3)).toEqual({ rows: big, cols: 3 });
    expect(rectAt(2 ** 31, 0, 1, 1)).toEqual({ row: 2 ** 31, col: 0, rows: 1, cols: 1 });
    expect(rectAt(2 ** 32 + 5, 0, 1, 1).row).toBe(2 ** 32 + 5);
    expect(Object.is(rectAt(0, 0, 1, 1).row, 0)).toBe(true);
    expect(Object.is(rectAt(-0, 0, 1, 1).row, -0)).toBe(true);
    expect(Object.is(rectAt(0, 0, 1, 1).row, 0)).toBe(true);
  });

  it("stays correct once the tables have started over", () => {
    for (let i = 0; i < 70_000; i++) {
      expect(rectAt(i, 1, 2, 3).row).toBe(i);
      expect(matrixView(i, 7).rows).toBe(i);
    }
    expect(rectAt(5, 1, 2, 3)).toEqual({ row: 5, col: 1, rows: 2, cols: 3 });
    expect(rectAt(5, 1, 2, 3)).toBe(rectAt(5, 1, 2, 3));
  });

  it("maps and places segments to the right rectangles", () => {
    const seg: Segment = { source: "w", src: rectAt(4, 2, 4, 6), dst: rectAt(0, 0, 4, 6), transposed: false };
    expect(mapSrcToDst(seg, rectAt(5, 3, 2, 2))).toEqual({ row: 1, col: 1, rows: 2, cols: 2 });
    const transposed: Segment = { ...seg, dst: rectAt(0, 0, 6, 4), transposed: true };
    expect(mapSrcToDst(transposed, rectAt(5, 3, 2, 3))).toEqual({ row: 1, col: 1, rows: 3, cols: 2 });
    expect(placeSegment(seg, 10, false).dst).toEqual({ row: 10, col: 0, rows: 4, cols: 6 });
    expect(placeSegment(seg, 10, true)).toEqual({ source: "w", src: seg.src, dst: { row: 10, col: 0, rows: 6, cols: 4 }, transposed: true });
  });
});
