import { describe, expect, it } from "vitest";
import { MappingTableError, ResolutionError } from "../../src/mapping/errors.js";
import { expandViews } from "../../src/mapping/hf-views.js";
import { resolveTable } from "../../src/mapping/resolve.js";
import { loadTable } from "../../src/mapping/table.js";
import { dimsOf, mixtralTable, mixtralTensors } from "../support/tiny-model.js";

const rule = (extra: Record<string, unknown>) => ({
  name: "t",
  hfArchitectures: ["X"],
  rules: [{ megatron: "decoder.layers.{layer}.a.weight", hf: "model.layers.{layer}.a.weight", tp: "column", ...extra }],
});

function problemsOf(json: unknown): string[] {
  try {
    loadTable(json, "mappings/t.json");
  } catch (error) {
    expect(error).toBeInstanceOf(MappingTableError);
    return [...(error as MappingTableError).problems];
  }
  throw new Error("the table loaded");
}

describe("loadTable", () => {
  it("loads every shipped table", async () => {
    const table = await mixtralTable();
    expect(table.rules.length).toBe(10);
    expect(table.hfArchitectures).toContain("MixtralForCausalLM");
  });

  it("names the JSON path of each problem", () => {
    expect(problemsOf(rule({ tp: "diagonal" }))).toEqual([expect.stringContaining('rules[0].tp: must be one of replicated, column, row, vocab; found "diagonal"')]);
    expect(problemsOf(rule({ combine: "mix" }))[0]).toContain("rules[0].combine: unknown combine");
    expect(
      problemsOf({ ...rule({}), rules: [{ megatron: "x.{layer}.qkv", hf: { q: "q.{layer}", k: "k.{layer}" }, combine: "qkv", tp: "column" }] })[0],
    ).toContain("combine \"qkv\" takes inputs {k, q, v}; found {k, q}");
    expect(problemsOf({ ...rule({}), rules: [{ megatron: "x.{layer}.{expert}", hf: "y.{layer}", tp: "row" }] })[0]).toContain(
      "rules[0].hf: lacks capture {expert}",
    );
    expect(problemsOf({ ...rule({}), rules: [{ megatron: "x.{layer}", hf: "y.{layer}.{layer_id}", tp: "row" }] })[0]).toContain(
      "unknown capture {layer_id}",
    );
    expect(problemsOf({ ...rule({}), rules: [{ megatron: "final.weight", hf: "norm.weight", tp: "replicated" }] })[0]).toContain(
      'needs either a {layer} capture or a "stage"',
    );
  });

  it("refuses two rules producing one Megatron name", () => {
    const json = rule({});
    json.rules.push({ ...json.rules[0], hf: "model.layers.{layer}.b.weight" } as (typeof json.rules)[0]);
    expect(problemsOf(json)[0]).toContain("is already produced by rules[0]");
  });
});

describe("resolveTable", () => {
  it("maps every tiny Mixtral tensor exactly once", async () => {
    const dims = dimsOf();
    const bindings = resolveTable(await mixtralTable(), mixtralTensors(dims), dims, "tiny");
    const used = bindings.flatMap((b) => [...b.inputs.values()].map((t) => t.name));
    expect(new Set(used).size).toBe(used.length);
    expect(used.length).toBe(mixtralTensors(dims).length);
  });

  it("lists every unmapped, missing and misshapen tensor at once", async () => {
    const dims = dimsOf();
    const tensors = mixtralTensors(dims)
      .filter((t) => t.name !== "model.layers.2.block_sparse_moe.experts.5.w3.weight")
      .map((t) => (t.name === "model.layers.1.self_attn.k_proj.weight" ? { ...t, shape: [16, 64] } : t));
    tensors.push({ name: "model.layers.0.extra.weight", dtype: "BF16", shape: [4] });
    let error: unknown;
    try {
      resolveTable(await mixtralTable(), tensors, dims, "tiny");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ResolutionError);
    const problems = (error as ResolutionError).problems.join("\n");
    expect(problems).toContain('missing tensor "model.layers.2.block_sparse_moe.experts.5.w3.weight"');
    expect(problems).toContain('tensor "model.layers.0.extra.weight" [4] is not mapped by any rule');
    expect(problems).toContain('tensor "model.layers.1.self_attn.k_proj.weight" has shape [16, 64]; config.json implies [kvGroups*headDim=32, hidden=64]');
  });

  it("reports a layer the config announces but the checkpoint lacks", async () => {
    const dims = dimsOf({ layers: 5 });
    expect(() => resolveTable(mixtralTableSync, mixtralTensors(dimsOf()), dims, "tiny")).toThrow(/model\.layers\.4\.input_layernorm\.weight/);
  });

  it("reads the transformers v5 fused expert layout through views", async () => {
    const dims = dimsOf();
    const fused = mixtralTensors(dims).filter((t) => !t.name.includes("block_sparse_moe"));
    for (let l = 0; l < dims.layers; l++) {
      fused.push(
        { name: `model.layers.${l}.mlp.gate.weight`, dtype: "BF16", shape: [dims.experts, dims.hidden] },
        { name: `model.layers.${l}.mlp.experts.gate_up_proj`, dtype: "BF16", shape: [dims.experts, 2 * dims.ffn, dims.hidden] },
        { name: `model.layers.${l}.mlp.experts.down_proj`, dtype: "BF16", shape: [dims.experts, dims.hidden, dims.ffn] },
      );
    }
    const table = await mixtralTable();
    const expanded = expandViews(fused, table.hfViews);
    expect(expanded.origins.get("model.layers.1.block_sparse_moe.experts.3.w3.weight")).toEqual({
      actual: "model.layers.1.mlp.experts.gate_up_proj",
      rowOffset: 3 * 2 * dims.ffn + dims.ffn,
    });
    expect(resolveTable(table, expanded.tensors, dims, "fused").length).toBe(resolveTable(table, mixtralTensors(dims), dims, "x").length);
  });
});

const mixtralTableSync = await mixtralTable();
