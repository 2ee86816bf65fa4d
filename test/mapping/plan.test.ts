import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { composeThrough, invertPlan, parseRankTensorId, rankTensorId } from "../../src/mapping/invert.js";
import { planConversion, type ConversionPlan } from "../../src/mapping/plan.js";
import type { ExpertImpl, LayerSpec } from "../../src/mapping/profiles.js";
import { resolveTable } from "../../src/mapping/resolve.js";
import { rankDirName } from "../../src/megatron/checkpoint-layout.js";
import { validateLayout, type ParallelLayout } from "../../src/model/parallel-layout.js";
import type { ModelDims } from "../../src/model/model-dims.js";
import { collect, MemorySpace, spaceOf } from "../support/memory-space.js";
import { hfTensorsOf } from "../../src/mapping/synthesize.js";
import { loadTable } from "../../src/mapping/table.js";
import { dimsOf, mixtralTable, mixtralTensors, profiles, REPO, SHARED } from "../support/tiny-model.js";

const table = await mixtralTable();
const megatron = await profiles();

function layoutOf(l: Partial<ParallelLayout>): ParallelLayout {
  return { tp: 1, pp: 1, ep: 1, etp: l.tp ?? 1, vpp: 1, makeVocabDivisibleBy: 128, ...l };
}

/**
 * A plan, frozen all the way down: rank files share a plan's tensors and name layouts (every EP
 * rank holds the same dense pieces), so no reader may change one. The tests below read plans the
 * way the commands do (inverting, composing, streaming bytes); a write into one throws here.
 */
function plan(dims: ModelDims, l: Partial<ParallelLayout>, spec: LayerSpec, experts: ExpertImpl): ConversionPlan {
  const layout = validateLayout(layoutOf(l), dims);
  return deepFreeze(planConversion(resolveTable(table, mixtralTensors(dims), dims, "t"), dims, { layout, spec, experts }, megatron));
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) {
      deepFreeze(v);
    }
  }
  return value;
}

interface GoldenFile {
  config: { tensor_model_parallel_size: number; pipeline_model_parallel_size: number; expert_model_parallel_size: number; params_dtype: string; moe_grouped_gemm: boolean };
  rank: { tp: number; pp: number; ep: number };
  legacy_path: string;
  state_dict: { key: string; shape?: number[]; dtype?: string }[];
}

const GOLDEN_DIMS = dimsOf({ layers: 4, hidden: 64, heads: 4, kvGroups: 2, headDim: 16, ffn: 128, experts: 4, vocab: 128, dtype: "F32" });
const TORCH_DTYPE: Record<string, string> = { F32: "float32", BF16: "bfloat16" };

describe("plan vs the golden key lists of a real Megatron-Core model (local spec)", async () => {
  const dir = join(SHARED, "golden");
  const names = (await readdir(dir)).filter((n) => n.startsWith("keys_") && n.endsWith(".json"));
  it("has golden files to compare with", () => {
    expect(names.length).toBeGreaterThanOrEqual(20);
  });
  for (const name of names) {
    it(name, async () => {
      const golden = JSON.parse(await readFile(join(dir, name), "utf8")) as GoldenFile;
      const c = golden.config;
      const dims = { ...GOLDEN_DIMS, dtype: c.params_dtype === "bf16" ? ("BF16" as const) : ("F32" as const) };
      const p = plan(dims, { tp: c.tensor_model_parallel_size, pp: c.pipeline_model_parallel_size, ep: c.expert_model_parallel_size }, "local", c.moe_grouped_gemm ? "grouped" : "sequential");
      const file = p.files.find((f) => f.rank.tp === golden.rank.tp && f.rank.pp === golden.rank.pp && f.rank.ep === golden.rank.ep);
      expect(file).toBeDefined();
      expect(`release/${rankDirName(golden.rank, p.layout)}/model_optim_rng.pt`).toBe(golden.legacy_path);
      const ours = (file?.models[0]?.entries ?? []).map((e) =>
        e.kind === "tensor" ? { key: e.name, shape: [...e.shape], dtype: TORCH_DTYPE[e.dtype] } : { key: e.name },
      );
      const theirs = golden.state_dict.map((e) => (e.shape === undefined ? { key: e.key } : { key: e.key, shape: e.shape, dtype: e.dtype }));
      expect(ours).toEqual(theirs);
    });
  }
});

describe("rank files share what they hold alike", () => {
  it("every EP rank's file holds the same object for a dense weight's TP piece, and its own for an expert's", () => {
    const p = plan(dimsOf(), { tp: 2, ep: 2 }, "te", "sequential");
    const entry = (tp: number, ep: number, name: string) =>
      p.files.find((f) => f.rank.tp === tp && f.rank.ep === ep)?.models[0]?.entries.find((e) => e.name === name);
    const qkv = "decoder.layers.0.self_attention.linear_qkv.weight";
    const fc1 = "decoder.layers.0.mlp.experts.local_experts.0.linear_fc1.weight";
    expect(entry(1, 0, qkv)).toBeDefined();
    expect(entry(1, 1, qkv)).toBe(entry(1, 0, qkv));
    expect(entry(0, 0, qkv)).not.toEqual(entry(1, 0, qkv));
    expect(entry(1, 1, fc1)).not.toEqual(entry(1, 0, fc1));
    expect(p.files.map((f) => f.models[0]?.entries.map((e) => e.name))).toEqual(p.files.map(() => p.files[0]?.models[0]?.entries.map((e) => e.name)));
  });

  it("holds one object per distinct rectangle and view, through packs and composition too", () => {
    const p = plan(dimsOf(), { tp: 2, ep: 2 }, "te", "te-grouped");
    const back = invertPlan(p, mixtralTensors(dimsOf()));
    const composed = p.files.flatMap((f) => f.models.flatMap((m) => m.entries)).flatMap((e) =>
      e.kind === "tensor" ? e.segments.flatMap((s) => composeThrough(s, back.get(s.source) as NonNullable<ReturnType<typeof back.get>>)) : [],
    );
    const values = new Map<string, Set<object>>();
    const note = (value: object) => {
      const key = JSON.stringify(value);
      values.set(key, (values.get(key) ?? new Set()).add(value));
    };
    for (const e of p.files.flatMap((f) => f.models.flatMap((m) => m.entries))) {
      if (e.kind === "tensor") {
        note(e.view);
        e.segments.forEach((s) => [s.src, s.dst].forEach(note));
      }
    }
    composed.forEach((s) => [s.src, s.dst].forEach(note));
    expect(values.size).toBeGreaterThan(20);
    expect([...values].filter(([, objects]) => objects.size > 1).map(([key]) => key)).toEqual([]);
  });
});

describe("TE spec names (megatron-layout 3.2/3.3, no golden list exists)", () => {
  it("fuses the input norm into linear_qkv and gives TE modules _extra_state", () => {
    const p = plan(dimsOf(), { tp: 2 }, "te", "te-grouped");
    const keys = (p.files[0]?.models[0]?.entries ?? []).map((e) => e.name).filter((k) => k.startsWith("decoder.layers.0."));
    expect(keys).toEqual([
      "decoder.layers.0.self_attention.core_attention._extra_state",
      "decoder.layers.0.self_attention.linear_proj.weight",
      "decoder.layers.0.self_attention.linear_proj._extra_state",
      "decoder.layers.0.self_attention.linear_qkv.layer_norm_weight",
      "decoder.layers.0.self_attention.linear_qkv.weight",
      "decoder.layers.0.self_attention.linear_qkv._extra_state",
      "decoder.layers.0.pre_mlp_layernorm.weight",
      "decoder.layers.0.pre_mlp_layernorm._extra_state",
      "decoder.layers.0.mlp.router.weight",
      ...Array.from({ length: 8 }, (_, j) => `decoder.layers.0.mlp.experts.linear_fc1.weight${j}`),
      "decoder.layers.0.mlp.experts.linear_fc1._extra_state",
      ...Array.from({ length: 8 }, (_, j) => `decoder.layers.0.mlp.experts.linear_fc2.weight${j}`),
      "decoder.layers.0.mlp.experts.linear_fc2._extra_state",
    ]);
  });

  it("matches the worked example of megatron-layout 3.4 (Mixtral 8x7B, TP=4, EP=4)", () => {
    const dims = dimsOf({ layers: 32, hidden: 4096, heads: 32, kvGroups: 8, headDim: 128, ffn: 14336, experts: 8, vocab: 32000 });
    const p = plan(dims, { tp: 4, ep: 4 }, "te", "sequential");
    expect(p.files.length).toBe(16);
    expect(p.paddedVocab).toBe(32256);
    const file = p.files.find((f) => f.rank.tp === 1 && f.rank.ep === 3);
    const shape = (k: string) => {
      const e = file?.models[0]?.entries.find((x) => x.name === k);
      return e?.kind === "tensor" ? e.shape : undefined;
    };
    expect(rankDirName({ tp: 1, pp: 0, ep: 3 }, p.layout)).toBe("mp_rank_01_003");
    expect(shape("embedding.word_embeddings.weight")).toEqual([8064, 4096]);
    expect(shape("decoder.layers.0.self_attention.linear_qkv.weight")).toEqual([1536, 4096]);
    expect(shape("decoder.layers.0.self_attention.linear_proj.weight")).toEqual([4096, 1024]);
    expect(shape("decoder.layers.0.mlp.router.weight")).toEqual([8, 4096]);
    expect(shape("decoder.layers.31.mlp.experts.local_experts.1.linear_fc1.weight")).toEqual([7168, 4096]);
    expect(shape("decoder.layers.31.mlp.experts.local_experts.1.linear_fc2.weight")).toEqual([4096, 3584]);
    expect(shape("decoder.layers.0.mlp.experts.local_experts.2.linear_fc1.weight")).toBeUndefined();
  });
});

describe("known answers", () => {
  it("interleaves QKV per query group, then splits groups over TP", () => {
    const dims = dimsOf({ heads: 4, kvGroups: 2, headDim: 1, hidden: 64 });
    const p = plan(dims, { tp: 2 }, "local", "sequential");
    const qkv = p.files[1]?.models[0]?.entries.find((e) => e.name === "decoder.layers.0.self_attention.linear_qkv.weight");
    expect(qkv?.kind === "tensor" ? qkv.segments.map((s) => [s.source.split(".").at(-2), s.src.row, s.src.rows]) : []).toEqual([
      ["q_proj", 2, 2],
      ["k_proj", 1, 1],
      ["v_proj", 1, 1],
    ]);
  });

  it("puts [gate_r; up_r] in each TP rank's fc1 and pads the vocab with the last row", () => {
    const p = plan(dimsOf(), { tp: 2 }, "local", "sequential");
    const entries = p.files[1]?.models[0]?.entries ?? [];
    const fc1 = entries.find((e) => e.name === "decoder.layers.0.mlp.experts.local_experts.0.linear_fc1.weight");
    expect(fc1?.kind === "tensor" ? fc1.segments.map((s) => [s.source.split(".").at(-2), s.src.row, s.src.rows, s.dst.row]) : []).toEqual([
      ["w1", 16, 16, 0],
      ["w3", 16, 16, 16],
    ]);
    const emb = entries.find((e) => e.name === "embedding.word_embeddings.weight");
    expect(emb?.kind === "tensor" ? emb.segments.map((s) => [s.src.row, s.src.rows, s.dst.row, s.dst.rows, s.repeat]) : []).toEqual([
      [128, 122, 0, 122, undefined],
      [249, 1, 122, 6, 6],
    ]);
  });
});

const LAYOUTS: [Partial<ParallelLayout>, LayerSpec, ExpertImpl][] = [
  [{}, "te", "sequential"],
  [{ tp: 2, pp: 2, ep: 2 }, "te", "sequential"],
  [{ tp: 4, ep: 4 }, "te", "te-grouped"],
  [{ tp: 2, ep: 8 }, "local", "grouped"],
  [{ tp: 4, pp: 2, ep: 2 }, "local", "grouped"],
  [{ pp: 2, vpp: 2, tp: 2 }, "te", "te-grouped"],
  [{ pp: 2, ppFirstLayers: 1, ep: 4 }, "local", "sequential"],
  [{ pp: 4, tp: 1, ep: 2 }, "te", "grouped"],
];

/** Executes a plan in memory: rank tensor id -> bytes. */
async function execute(p: ConversionPlan, hf: MemorySpace): Promise<MemorySpace> {
  const ranks = new MemorySpace();
  for (const file of p.files) {
    for (const model of file.models) {
      for (const e of model.entries) {
        if (e.kind === "tensor") {
          ranks.add(rankTensorId(file.rank, model.key, e.name), e.dtype, e.view, await collect(e, hf));
        }
      }
    }
  }
  return ranks;
}

describe("inverse of forward is the identity, byte for byte", () => {
  for (const [l, spec, experts] of LAYOUTS) {
    it(`${JSON.stringify(l)} ${spec} ${experts}`, async () => {
      const dims = dimsOf();
      const tensors = mixtralTensors(dims);
      const hf = spaceOf(tensors, 7);
      const p = plan(dims, l, spec, experts);
      const ranks = await execute(p, hf);
      const recipes = invertPlan(p, tensors);
      for (const t of tensors) {
        const recipe = recipes.get(t.name);
        expect(recipe).toBeDefined();
        if (recipe !== undefined) {
          expect(Buffer.from(await collect(recipe, ranks)).equals(Buffer.from(hf.tensors.get(t.name)?.bytes ?? []))).toBe(true);
        }
      }
      expect(parseRankTensorId(rankTensorId({ tp: 1, pp: 2, ep: 3 }, "model1", "a.b|c"))).toEqual({ rank: { tp: 1, pp: 2, ep: 3 }, modelKey: "model1", name: "a.b|c" });
    });
  }
});

describe("resharding through composed segments equals converting directly", () => {
  const pairs: [number, number][] = [
    [1, 2],
    [2, 3],
    [4, 5],
    [6, 0],
  ];
  for (const [a, b] of pairs) {
    const [la, sa, ea] = LAYOUTS[a] ?? LAYOUTS[0]!;
    const [lb, sb, eb] = LAYOUTS[b] ?? LAYOUTS[0]!;
    it(`${JSON.stringify(la)} ${sa} ${ea} -> ${JSON.stringify(lb)} ${sb} ${eb}`, async () => {
      const dims = dimsOf();
      const tensors = mixtralTensors(dims);
      const hf = spaceOf(tensors, 3);
      const pa = plan(dims, la, sa, ea);
      const pb = plan(dims, lb, sb, eb);
      const ranksA = await execute(pa, hf);
      const recipes = invertPlan(pa, tensors);
      for (const file of pb.files) {
        for (const model of file.models) {
          for (const e of model.entries) {
            if (e.kind !== "tensor") {
              continue;
            }
            const viaA = { ...e, segments: e.segments.flatMap((s) => composeThrough(s, recipes.get(s.source)!)) };
            expect(Buffer.from(await collect(viaA, ranksA)).equals(Buffer.from(await collect(e, hf)))).toBe(true);
          }
        }
      }
    });
  }
});

describe("dense layers and tied embeddings (mappings/llama.json)", async () => {
  const llama = loadTable(JSON.parse(await readFile(join(REPO, "mappings", "llama.json"), "utf8")), "mappings/llama.json");
  const planLlama = (tie: boolean, l: Partial<ParallelLayout>, spec: LayerSpec): ConversionPlan => {
    const dims = dimsOf({ experts: 0, topk: 0, ffn: 96, tieEmbeddings: tie });
    const layout = validateLayout(layoutOf(l), dims);
    return planConversion(resolveTable(llama, hfTensorsOf(llama, dims, "BF16"), dims, "t"), dims, { layout, spec, experts: "sequential" }, megatron);
  };
  const keys = (p: ConversionPlan, pp: number): string[] => p.files.find((f) => f.rank.pp === pp && f.rank.tp === 0)?.models[0]?.entries.map((e) => e.name) ?? [];

  it("TE fuses a dense layer's pre-MLP norm into linear_fc1; local keeps pre_mlp_layernorm", () => {
    const te = keys(planLlama(false, {}, "te"), 0);
    expect(te).toContain("decoder.layers.0.mlp.linear_fc1.layer_norm_weight");
    expect(te.filter((k) => k.includes("pre_mlp_layernorm"))).toEqual([]);
    expect(te.indexOf("decoder.layers.0.mlp.linear_fc1.layer_norm_weight")).toBe(te.indexOf("decoder.layers.0.mlp.linear_fc1.weight") - 1);
    const local = keys(planLlama(false, {}, "local"), 0);
    expect(local).toContain("decoder.layers.0.pre_mlp_layernorm.weight");
    expect(local).not.toContain("decoder.layers.0.mlp.linear_fc1.layer_norm_weight");
  });

  it("tied: no output_layer.weight where the first stage is also the last, a copy on a separate last stage", () => {
    for (const spec of ["te", "local"] as const) {
      const single = keys(planLlama(true, { tp: 2 }, spec), 0);
      expect(single).not.toContain("output_layer.weight");
      expect(single).toContain("output_layer._extra_state");
      const staged = planLlama(true, { tp: 2, pp: 2 }, spec);
      expect(keys(staged, 1)).toContain("output_layer.weight");
      const copy = staged.files.find((f) => f.rank.pp === 1 && f.rank.tp === 1)?.models[0]?.entries.find((e) => e.name === "output_layer.weight");
      const embed = staged.files.find((f) => f.rank.pp === 0 && f.rank.tp === 1)?.models[0]?.entries.find((e) => e.name === "embedding.word_embeddings.weight");
      expect(copy).toEqual({ ...embed, name: "output_layer.weight" });
    }
    expect(keys(planLlama(false, {}, "te"), 0)).toContain("output_layer.weight");
  });
});
