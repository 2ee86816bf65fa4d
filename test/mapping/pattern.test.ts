import { describe, expect, it } from "vitest";
import { compilePattern, matchPattern, renderPattern, type Pattern } from "../../src/mapping/pattern.js";

const compiled = (s: string): Pattern => {
  const p = compilePattern(s);
  if ("unknown" in p) {
    throw new Error("bad pattern");
  }
  return p;
};

describe("pattern", () => {
  it("matches named captures and renders them back", () => {
    const p = compiled("model.layers.{layer}.block_sparse_moe.experts.{expert}.w1.weight");
    expect(matchPattern(p, "model.layers.12.block_sparse_moe.experts.7.w1.weight")).toEqual({ layer: 12, expert: 7 });
    expect(renderPattern(p.source, { layer: 3, expert: 0 })).toBe("model.layers.3.block_sparse_moe.experts.0.w1.weight");
  });

  it("rejects near misses: dots are literal, numbers have no leading zeros", () => {
    const p = compiled("model.layers.{layer}.mlp.weight");
    expect(matchPattern(p, "model.layers.1.mlpXweight")).toBeUndefined();
    expect(matchPattern(p, "model.layers.01.mlp.weight")).toBeUndefined();
    expect(matchPattern(p, "model.layers.1.mlp.weight.extra")).toBeUndefined();
  });

  it("reports unknown capture names", () => {
    expect(compilePattern("a.{layer_number}.b")).toEqual({ unknown: ["layer_number"] });
  });

  it("requires a repeated capture to bind one value", () => {
    const p = compiled("{layer}.x.{layer}");
    expect(matchPattern(p, "3.x.3")).toEqual({ layer: 3 });
    expect(matchPattern(p, "3.x.4")).toBeUndefined();
  });
});
