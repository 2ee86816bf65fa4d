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

describe("table features the dense and Qwen tables use", () => {
  it("lets two rules produce one name only under opposite `when`s on one flag", () => {
    const base = { megatron: "output_layer.weight", tp: "vocab", stage: "last" };
    const tied = (equals: boolean, extra: Record<string, unknown> = {}) => ({ ...base, hf: equals ? "model.embed_tokens.weight" : "lm_head.weight", when: { dim: "tieEmbeddings", equals }, ...extra });
    const ok = loadTable({ name: "t", hfArchitectures: ["X"], rules: [tied(false), tied(true, { tied: true })] }, "t.json");
    expect(ok.rules.map((r) => r.tied)).toEqual([false, true]);
    expect(problemsOf({ name: "t", hfArchitectures: ["X"], rules: [tied(false), tied(false)] })[0]).toContain("already produced by rules[0]");
    expect(problemsOf({ name: "t", hfArchitectures: ["X"], rules: [tied(false), { ...base, hf: "x" }] })[0]).toContain("already produced by rules[0]");
    expect(problemsOf({ name: "t", hfArchitectures: ["X"], rules: [tied(false, { tied: "yes" })] })[0]).toContain("rules[0].tied: must be true or false");
  });

  it("parses configDefaults and configRequires, naming the path of a bad one", () => {
    const table = loadTable({ ...rule({}), configDefaults: { normTopk: false, sharedFfn: 0 }, configRequires: [{ key: "mlp_only_layers", allowed: [[]], why: "all sparse" }] }, "t.json");
    expect(table.configDefaults).toEqual({ normTopk: false, sharedFfn: 0 });
    expect(table.configRequires).toEqual([{ key: "mlp_only_layers", allowed: [[]], why: "all sparse" }]);
    expect(problemsOf({ ...rule({}), configDefaults: { normTopk: "no" } })[0]).toContain("configDefaults: must map");
    expect(problemsOf({ ...rule({}), configRequires: [{ key: "x", allowed: 1 }] })[0]).toContain('configRequires[0]: must be {"key"');
  });

  it("a tied rule's input is not a use of its own: the tensor must still be mapped by another rule", () => {
    const table = loadTable(
      {
        name: "t",
        hfArchitectures: ["X"],
        rules: [
          { megatron: "embedding.word_embeddings.weight", hf: "model.embed_tokens.weight", tp: "vocab", stage: "first" },
          { megatron: "output_layer.weight", hf: "model.embed_tokens.weight", tp: "vocab", stage: "last", when: { dim: "tieEmbeddings", equals: true }, tied: true },
        ],
      },
      "t.json",
    );
    const dims = dimsOf({ tieEmbeddings: true, layers: 0 });
    const embed = { name: "model.embed_tokens.weight", dtype: "BF16" as const, shape: [250, 64] };
    expect(resolveTable(table, [embed], dims, "x").map((b) => b.megatron)).toEqual(["embedding.word_embeddings.weight", "output_layer.weight"]);
    const lonely = loadTable({ ...table, rules: [{ megatron: "output_layer.weight", hf: "model.embed_tokens.weight", tp: "vocab", stage: "last", tied: true }] }, "t.json");
    expect(() => resolveTable(lonely, [embed], dims, "x")).toThrow(/is not mapped by any rule/);
  });
});
