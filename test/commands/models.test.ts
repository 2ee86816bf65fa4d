import { cp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hf2mcore } from "../../src/commands/convert.js";
import { openHfModel } from "../../src/commands/hf-input.js";
import { mcore2hf } from "../../src/commands/mcore2hf.js";
import { reshard } from "../../src/commands/reshard.js";
import { verifyExact } from "../../src/commands/verify.js";
import type { TargetOptions } from "../../src/commands/build-plan.js";
import { ConvertError } from "../../src/errors.js";
import { hfTensorsOf } from "../../src/mapping/synthesize.js";
import { compareHfFolders } from "../../src/verify/compare-hf.js";
import { expectOracleAgrees } from "../support/oracle.js";
import { runPythonScript } from "../support/python.js";
import { targetOf } from "../support/targets.js";
import { makeTempDir } from "../support/tmpdir.js";
import { REPO } from "../support/tiny-model.js";

const fixture = (name: string): string => join(REPO, "fixtures", `tiny-${name}`);

interface ModelCase {
  readonly name: string;
  readonly table: string;
  /** Layouts the independent oracle checks (several specs and expert implementations). */
  readonly layouts: readonly TargetOptions[];
  /** A reshard pair, A -> B. */
  readonly reshard: readonly [TargetOptions, TargetOptions];
}

const DENSE_LAYOUTS = [
  targetOf({}),
  targetOf({ tp: 2, pp: 2 }),
  targetOf({ tp: 4 }, "local"),
  targetOf({ pp: 4 }, "te"),
  targetOf({ tp: 2, pp: 2, vpp: 2 }, "local"),
];
const MOE_LAYOUTS = [
  targetOf({}, "local"),
  targetOf({ tp: 2, pp: 2, ep: 2 }),
  targetOf({ tp: 2, ep: 4 }, "te", "te-grouped"),
  targetOf({ pp: 2, ep: 8 }, "local", "grouped"),
  targetOf({ tp: 4, pp: 2, vpp: 2, ep: 2 }, "te", "sequential"),
];

const MODELS: readonly ModelCase[] = [
  { name: "llama", table: "llama", layouts: DENSE_LAYOUTS, reshard: [targetOf({ tp: 2, pp: 2 }), targetOf({ tp: 4 }, "local")] },
  { name: "mistral", table: "mistral", layouts: DENSE_LAYOUTS, reshard: [targetOf({ pp: 4 }), targetOf({ tp: 2, pp: 2, vpp: 2 })] },
  { name: "qwen2-moe", table: "qwen2-moe", layouts: MOE_LAYOUTS, reshard: [targetOf({ tp: 2, ep: 2 }), targetOf({ tp: 1, pp: 2, ep: 4 }, "local", "grouped")] },
  { name: "qwen3-moe", table: "qwen3-moe", layouts: MOE_LAYOUTS, reshard: [targetOf({ tp: 4, ep: 8 }, "te", "te-grouped"), targetOf({ pp: 2, ep: 2 }, "local")] },
];

async function convert(hf: string, target: TargetOptions): Promise<string> {
  const out = join(await makeTempDir(), "mcore");
  await hf2mcore({ ...target, hf, out, jobs: 2 });
  return out;
}

const label = (t: TargetOptions): string => `${JSON.stringify(t.layout)} ${t.spec} ${t.experts}`;

for (const model of MODELS) {
  const hf = fixture(model.name);
  describe(`${model.name}: mappings/${model.table}.json`, () => {
    it("maps every tensor of the fixture exactly once, and the table implies exactly the fixture's tensors", async () => {
      const opened = await openHfModel(hf);
      try {
        expect(opened.table.name).toBe(model.table);
        const used = opened.bindings.filter((b) => !b.rule.tied).flatMap((b) => [...b.inputs.values()].map((t) => t.name));
        expect(used.sort()).toEqual(opened.tensors.map((t) => t.name).sort());
        const implied = hfTensorsOf(opened.table, opened.dims, opened.dims.dtype);
        expect(implied.map((t) => `${t.name} ${t.shape.join("x")}`).sort()).toEqual(opened.tensors.map((t) => `${t.name} ${t.shape.join("x")}`).sort());
      } finally {
        await opened.close();
      }
    });

    it("is the committed fixture that make_tiny_model.py writes, byte for byte", async () => {
      const again = join(await makeTempDir(), model.name);
      const gen = runPythonScript(join(REPO, "fixtures", "make_tiny_model.py"), [again, "--arch", model.name]);
      expect(gen.status, gen.stderr).toBe(0);
      const files = (await readdir(hf)).sort();
      expect((await readdir(again)).sort()).toEqual(files);
      for (const file of files) {
        expect([file, Buffer.compare(await readFile(join(again, file)), await readFile(join(hf, file)))]).toEqual([file, 0]);
      }
    });

    if (model.name.endsWith("-moe")) {
      it("reads the transformers-5 fused experts (hfViews) into the same checkpoint", async () => {
        const fused = join(await makeTempDir(), "fused");
        const gen = runPythonScript(join(REPO, "fixtures", "make_tiny_model.py"), [fused, "--arch", model.name, "--fused"]);
        expect(gen.status, gen.stderr).toBe(0);
        const out = await convert(fused, targetOf({ tp: 2, ep: 2 }));
        const report = await verifyExact({ hf, mcore: out, jobs: 2 });
        expect(report.differences).toEqual([]);
        expect(report.tensorsChecked).toBeGreaterThan(0);
      });
    }

    for (const target of model.layouts) {
      it(`hf2mcore ${label(target)} matches the independent torch oracle and verify exact`, async () => {
        const out = await convert(hf, target);
        expectOracleAgrees(hf, out, target);
        const report = await verifyExact({ hf, mcore: out, jobs: 2 });
        expect(report.differences).toEqual([]);
        expect(report.ok).toBe(true);
      });
    }

    it(`round trips bit-exactly: hf2mcore ${label(model.reshard[0])}, reshard to ${label(model.reshard[1])}, mcore2hf`, async () => {
      const [a, b] = model.reshard;
      const source = await convert(hf, a);
      const resharded = join(await makeTempDir(), "resharded");
      await reshard({ ...b, mcore: source, out: resharded, jobs: 2 });
      const exact = await verifyExact({ hf, mcore: resharded, jobs: 2 });
      expect(exact.differences).toEqual([]);
      for (const mcore of [source, resharded]) {
        const back = join(await makeTempDir(), "hf");
        const result = await mcore2hf({ mcore, out: back, maxShardBytes: 300_000 });
        const report = await compareHfFolders(hf, back);
        expect(report.differences).toEqual([]);
        expect(report.tensorsChecked).toBe(result.tensors);
        const config = JSON.parse(await readFile(join(back, "config.json"), "utf8")) as Record<string, unknown>;
        const original = JSON.parse(await readFile(join(hf, "config.json"), "utf8")) as Record<string, unknown>;
        for (const key of ["architectures", "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size", "tie_word_embeddings", "torch_dtype"]) {
          expect([key, config[key]]).toEqual([key, original[key]]);
        }
        for (const key of ["num_experts", "num_experts_per_tok", "moe_intermediate_size", "shared_expert_intermediate_size", "norm_topk_prob"]) {
          expect([key, config[key]]).toEqual([key, original[key]]);
        }
      }
    });
  });
}

describe("a Megatron checkpoint without megatron-convert.json (one Megatron trained)", () => {
  it("mcore2hf needs --model (or --hf-config); with it the round trip is bit-exact; the wrong table is refused", async () => {
    const hf = fixture("qwen3-moe");
    const mcore = await convert(hf, targetOf({ tp: 2, ep: 2 }));
    await rm(join(mcore, "megatron-convert.json"));
    const back = join(await makeTempDir(), "hf");
    const unknown = await errorOf(() => mcore2hf({ mcore, out: back, maxShardBytes: 1e9, vocabSize: 250 }));
    expect(unknown.message).toContain("pass --model <llama|mistral|mixtral|qwen2-moe|qwen3-moe>");
    await mcore2hf({ mcore, out: back, maxShardBytes: 1e9, vocabSize: 250, model: "qwen3-moe" });
    expect((await compareHfFolders(hf, back)).differences).toEqual([]);
    const wrong = await errorOf(() => mcore2hf({ mcore, out: join(back, "..", "wrong"), maxShardBytes: 1e9, vocabSize: 250, model: "mixtral" }));
    expect(wrong.message).toContain("unexpected tensor model/decoder.layers.0.self_attention.q_layernorm.weight");
    const typo = await errorOf(() => mcore2hf({ mcore, out: join(back, "..", "typo"), maxShardBytes: 1e9, vocabSize: 250, model: "qwen3" }));
    expect(typo.message).toContain("--model qwen3: no such mapping table");
  });
});

async function configVariant(name: string, change: (c: Record<string, unknown>) => void): Promise<string> {
  const dir = join(await makeTempDir(), name);
  await cp(fixture(name), dir, { recursive: true });
  const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  change(config);
  await writeFile(join(dir, "config.json"), JSON.stringify(config));
  return dir;
}

async function errorOf(run: () => Promise<unknown>): Promise<ConvertError> {
  try {
    await run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConvertError);
    return error as ConvertError;
  }
  throw new Error("expected a ConvertError");
}

describe("what the tables refuse, with the config key and the reason", () => {
  const cases: [string, string, (c: Record<string, unknown>) => void, string[]][] = [
    ["qwen2-moe", "dense layers among the MoE layers", (c) => (c["mlp_only_layers"] = [1]), ["mlp_only_layers", "every layer must be a MoE layer"]],
    ["qwen2-moe", "a sparse step of 2", (c) => (c["decoder_sparse_step"] = 2), ["decoder_sparse_step", "2"]],
    ["qwen3-moe", "attention biases", (c) => (c["attention_bias"] = true), ["attention_bias", "true"]],
    ["llama", "attention biases", (c) => (c["attention_bias"] = true), ["attention_bias", "o_proj"]],
    ["llama", "untied embeddings without lm_head.weight", (c) => (c["tie_word_embeddings"] = false), ["lm_head.weight"]],
    ["mistral", "tied embeddings with lm_head.weight present", (c) => (c["tie_word_embeddings"] = true), ["lm_head.weight", "not mapped"]],
    ["qwen2-moe", "norm_topk_prob that is not a boolean", (c) => (c["norm_topk_prob"] = "yes"), ["norm_topk_prob", "true or false"]],
  ];
  for (const [name, what, change, mentions] of cases) {
    it(`${name}: ${what}`, async () => {
      const hf = await configVariant(name, change);
      const error = await errorOf(() => hf2mcore({ ...targetOf({}), hf, out: join(hf, "..", "out"), jobs: 1 }));
      for (const m of mentions) {
        expect(error.message).toContain(m);
      }
    });
  }

  it("a dense model refuses EP > 1, and the shared expert size must divide by TP", async () => {
    const dense = await errorOf(() => hf2mcore({ ...targetOf({ ep: 2 }), hf: fixture("llama"), out: "/nonexistent/x", jobs: 1 }));
    expect(dense.message).toContain("EP=2 needs a mixture-of-experts model");
    const hf = await configVariant("qwen2-moe", (c) => (c["num_attention_heads"] = 8));
    const shared = await errorOf(() => hf2mcore({ ...targetOf({ tp: 32 }), hf, out: join(hf, "..", "out"), jobs: 1 }));
    expect(shared.message).toContain("shared expert ffn size");
  });
});
