import { cp } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ForwardReport } from "../../src/verify/forward-report.js";
import { ForwardCheckError, verifyForwardMany } from "../../src/verify/forward.js";
import { runCliAsync } from "../hf/hub-support.js";
import { pythonWithTorch } from "../support/python.js";
import { makeTempDir } from "../support/tmpdir.js";
import { REPO } from "../support/tiny-model.js";
import { spawnCollect } from "../support/spawn.js";

const PYTHON_DIR = join(REPO, "src", "verify", "python");
/** A per-token float64 numpy decoder written from transformers' semantics (every supported family). */
const NAIVE = join(REPO, "test", "verify", "python", "naive_mixtral.py");
const STAGES = ["embedding", "layer 0", "layer 1", "layer 2", "layer 3", "final_norm", "logits"];

/**
 * Breaks copies of a good conversion with real torch (load, edit, torch.save); argv: DIR...; the last
 * path component of each DIR names the case. Rank folders: mp_rank_TT_PPP[_EEE] (PP = 2 in every base layout).
 */
const BREAK = String.raw`
import glob, inspect, os, sys, torch
KW = {"weights_only": False} if "weights_only" in inspect.signature(torch.load).parameters else {}
def edit(root, fn, stage=None, rank=None):
    for p in sorted(glob.glob(f"{root}/release/*/model_optim_rng.pt")):
        d = os.path.basename(os.path.dirname(p))
        if (stage is None or d.split("_")[3] == f"{stage:03d}") and (rank is None or d == rank):
            sd = torch.load(p, map_location="cpu", **KW); fn(sd["model"], sd["args"]); torch.save(sd, p)
def change(root, key, fn, **where):
    edit(root, lambda m, a: m.__setitem__(key, fn(m[key]).clone()), **where)
def halves(w):
    h = w.shape[0] // 2
    return torch.cat([w[h:], w[:h]])
def swap_tp(root, key, stage):
    a, b = (f"{root}/release/mp_rank_0{t}_00{stage}/model_optim_rng.pt" for t in (0, 1))
    sa, sb = torch.load(a, map_location="cpu", **KW), torch.load(b, map_location="cpu", **KW)
    sa["model"][key], sb["model"][key] = sb["model"][key].clone(), sa["model"][key].clone()
    torch.save(sa, a); torch.save(sb, b)
L = "decoder.layers."
CASES = {
    # dense MLP: layer 1, TP rank 1's [gate; up] rows saved as [up; gate]
    "dense-gateup": lambda r: change(r, L + "1.mlp.linear_fc1.weight", halves, rank="mp_rank_01_000"),
    # tied embeddings with PP > 1: the last stage's own output_layer copy shifted by one vocab row
    "tied-output": lambda r: change(r, "output_layer.weight", lambda w: w.roll(1, 0), stage=1),
    # row-parallel dense fc2 of layer 3 (stage 1, local 1) exchanged between the TP ranks
    "dense-fc2": lambda r: swap_tp(r, L + "1.mlp.linear_fc2.weight", 1),
    # shared expert of layer 0: [gate; up] swapped in TP rank 0 of EP file 1 only (the second batch row's replica)
    "shared-gateup": lambda r: change(r, L + "0.mlp.shared_experts.linear_fc1.weight", halves, rank="mp_rank_00_000_001"),
    # shared expert gate of layer 1 negated (sigmoid(-x) instead of sigmoid(x))
    "shared-gate": lambda r: change(r, L + "1.mlp.shared_experts.gate_weight", lambda w: -w, stage=0),
    # QKV bias of layer 2 (stage 1, local 0) with its sign flipped
    "qkv-bias": lambda r: change(r, L + "0.self_attention.linear_qkv.bias", lambda w: -w, stage=1),
    # QKV bias of layer 3 dropped: Megatron (add_qkv_bias) would refuse to load it
    "no-qkv-bias": lambda r: edit(r, lambda m, a: m.pop(L + "1.self_attention.linear_qkv.bias"), stage=1),
    # q_layernorm of layer 1 zeroed
    "q-layernorm": lambda r: change(r, L + "1.self_attention.q_layernorm.weight", torch.zeros_like, stage=0),
    # q_layernorm and k_layernorm of layer 2 exchanged
    "qk-swap": lambda r: edit(r, lambda m, a: m.update({L + "0.self_attention.q_layernorm.weight": m[L + "0.self_attention.k_layernorm.weight"], L + "0.self_attention.k_layernorm.weight": m[L + "0.self_attention.q_layernorm.weight"]}), stage=1),
    # weights untouched; args flip Megatron's router mode (pre-softmax <-> top-k then softmax)
    "router": lambda r: edit(r, lambda m, a: setattr(a, "moe_router_pre_softmax", not getattr(a, "moe_router_pre_softmax", False))),
}
for root in sys.argv[1:]:
    CASES[os.path.basename(root)](root)
`;

interface Layout {
  readonly name: string;
  readonly flags: readonly string[];
  readonly spec: "te" | "local";
  readonly experts: "sequential" | "te-grouped" | "grouped" | null;
  readonly layout: { readonly tp: number; readonly pp: number; readonly ep: number; readonly vpp: number };
}

/** A broken copy of the model's first layout: where the check must point, or the error it must raise. */
interface Breakage {
  readonly name: string;
  readonly stage?: string;
  readonly layer?: number | null;
  readonly error?: string;
}

interface ModelCase {
  readonly fixture: string;
  readonly layouts: readonly Layout[];
  readonly breaks: readonly Breakage[];
  /** Expected subsets of the HF side's features (from config.json) and the Megatron side's (from args and keys). */
  readonly hf: Record<string, unknown>;
  readonly megatron: Record<string, unknown>;
}

function layout(name: string, l: Partial<Layout["layout"]>, spec: Layout["spec"] = "te", experts: Layout["experts"] = null, extra: string[] = []): Layout {
  const full = { tp: 1, pp: 1, ep: 1, vpp: 1, ...l };
  const flags = ["--tp", `${full.tp}`, "--pp", `${full.pp}`, "--ep", `${full.ep}`, "--vpp", `${full.vpp}`, "--spec", spec, ...extra];
  return { name, flags: experts === null ? flags : [...flags, "--experts", experts], spec, experts, layout: full };
}

const DENSE = { sparse_layers: [false, false, false, false], expert_names: null, shared_expert: false, qk_norm: false, qkv_bias: false };
const MODELS: readonly ModelCase[] = [
  {
    fixture: "tiny-llama",
    layouts: [
      layout("tp2-pp2", { tp: 2, pp: 2 }),
      layout("tp4-local", { tp: 4 }, "local"),
      layout("pp4", { pp: 4 }),
      layout("tp2-pp2-vpp2", { tp: 2, pp: 2, vpp: 2 }),
    ],
    breaks: [
      { name: "dense-gateup", stage: "layer 1", layer: 1 },
      { name: "tied-output", stage: "logits", layer: null },
    ],
    hf: DENSE,
    megatron: { tiedEmbeddings: true, denseLayers: 4, moeLayers: 0, qkvBias: false, qkLayernorm: false, sharedExperts: false },
  },
  {
    fixture: "tiny-mistral",
    layouts: [layout("tp2-pp2", { tp: 2, pp: 2 }), layout("tp4-local", { tp: 4 }, "local"), layout("pp2-vpp2-fp32", { pp: 2, vpp: 2 }, "te", null, ["--dtype", "fp32"])],
    breaks: [{ name: "dense-fc2", stage: "layer 3", layer: 3 }],
    hf: DENSE,
    megatron: { tiedEmbeddings: false, denseLayers: 4, moeLayers: 0 },
  },
  {
    fixture: "tiny-qwen2-moe",
    layouts: [
      layout("tp2-pp2-ep2", { tp: 2, pp: 2, ep: 2 }, "te", "sequential"),
      layout("tp4-ep4-local", { tp: 4, ep: 4 }, "local", "sequential"),
      layout("tp2-ep2-te-grouped", { tp: 2, ep: 2 }, "te", "te-grouped"),
      layout("pp2-ep8-grouped", { pp: 2, ep: 8 }, "local", "grouped"),
    ],
    breaks: [
      { name: "shared-gateup", stage: "layer 0", layer: 0 },
      { name: "shared-gate", stage: "layer 1", layer: 1 },
      { name: "qkv-bias", stage: "layer 2", layer: 2 },
      { name: "router", stage: "layer 0", layer: 0 },
      { name: "no-qkv-bias", error: "verify.layout" },
    ],
    hf: { sparse_layers: [true, true, true, true], expert_names: "qwen", norm_topk: false, shared_expert: true, qkv_bias: true, qk_norm: false },
    megatron: { qkvBias: true, qkLayernorm: false, sharedExperts: true, sharedExpertGate: true, tiedEmbeddings: false, denseLayers: 0, moeLayers: 4 },
  },
  {
    fixture: "tiny-qwen3-moe",
    layouts: [
      layout("tp2-pp2-ep2", { tp: 2, pp: 2, ep: 2 }, "te", "sequential"),
      layout("tp4-ep4-local", { tp: 4, ep: 4 }, "local", "sequential"),
      layout("pp2-ep8-te-grouped", { pp: 2, ep: 8 }, "te", "te-grouped"),
    ],
    breaks: [
      { name: "q-layernorm", stage: "layer 1", layer: 1 },
      { name: "qk-swap", stage: "layer 2", layer: 2 },
      { name: "router", stage: "layer 0", layer: 0 },
    ],
    hf: { sparse_layers: [true, true, true, true], expert_names: "qwen", norm_topk: true, shared_expert: false, qkv_bias: false, qk_norm: true },
    megatron: { qkvBias: false, qkLayernorm: true, sharedExperts: false, tiedEmbeddings: false, moeLayers: 4 },
  },
];


async function runPythonAsync(args: readonly string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await spawnCollect(pythonWithTorch(), args);
  return { status: code, stdout, stderr };
}

async function convertAll(hf: string, dir: string, layouts: readonly Layout[]): Promise<string[]> {
  return Promise.all(
    layouts.map(async (l) => {
      const out = join(dir, l.name);
      const r = await runCliAsync(["hf2mcore", hf, out, "--quiet", ...l.flags], {});
      expect(r.code, `hf2mcore ${l.name}: ${r.stderr}`).toBe(0);
      return out;
    }),
  );
}

describe.each(MODELS)("verify --forward on $fixture", (model) => {
  it("passes on every layout (fp32, 1e-5) and fails on each broken conversion, naming the stage; the CLI exits 1", async () => {
    const dir = await makeTempDir();
    const hf = join(REPO, "fixtures", model.fixture);
    const good = await convertAll(hf, dir, model.layouts);
    const broken = await Promise.all(
      model.breaks.map(async (b) => {
        await cp(good[0] ?? "", join(dir, b.name), { recursive: true });
        return join(dir, b.name);
      }),
    );
    const broke = await runPythonAsync(["-c", BREAK, ...broken]);
    expect(broke.status, broke.stderr).toBe(0);
    const cliCase = model.breaks.find((b) => b.stage?.startsWith("layer ") === true);
    const [results, cli] = await Promise.all([
      verifyForwardMany({ hf, mcore: good[0] ?? "" }, [...good, ...broken]),
      runCliAsync(["verify", hf, join(dir, cliCase?.name ?? ""), "--forward", "--seq-len", "32"], {}),
    ]);

    model.layouts.forEach((l, i) => {
      const r = results[i];
      if (r instanceof ForwardCheckError || r === undefined) {
        throw r ?? new Error(`no result for ${l.name}`);
      }
      const report = r as ForwardReport;
      expect({ name: l.name, ok: r.ok, first: r.firstDifference }).toEqual({ name: l.name, ok: true, first: null });
      expect(r.losses.relDiff ?? 1).toBeLessThanOrEqual(1e-5);
      expect(r.losses.hf).toBeGreaterThan(4);
      expect(r.stages.map((s) => s.name)).toEqual(STAGES);
      expect({ name: l.name, spec: r.megatronSide.spec, experts: r.megatronSide.experts }).toEqual({ name: l.name, spec: l.spec, experts: l.experts });
      expect(r.megatronSide.layout).toMatchObject(l.layout);
      expect(report.megatronSide.features).toMatchObject(model.megatron);
      expect(report.hfSide.features).toMatchObject(model.hf);
    });
    model.breaks.forEach((b, j) => {
      const r = results[model.layouts.length + j];
      if (b.error !== undefined) {
        expect(r).toBeInstanceOf(ForwardCheckError);
        expect({ name: b.name, code: (r as ForwardCheckError).code }).toEqual({ name: b.name, code: b.error });
        return;
      }
      if (r instanceof ForwardCheckError || r === undefined) {
        throw r ?? new Error(`no result for ${b.name}`);
      }
      expect({ name: b.name, ok: r.ok, first: r.firstDifference?.name, layer: r.firstDifference?.layer }).toEqual({ name: b.name, ok: false, first: b.stage, layer: b.layer });
      expect(r.firstDifference?.measure ?? 0).toBeGreaterThan(10 * r.tolerance.hidden);
      const before = r.stages.slice(0, r.stages.findIndex((s) => s.name === b.stage));
      expect(before.every((s) => s.ok && (s.measure ?? 1) < 1e-5)).toBe(true);
    });
    expect(cli.code, cli.stderr).toBe(1);
    expect(cli.stdout).toContain("verify forward: FAIL");
    expect(cli.stdout).toContain(`first difference: ${cliCase?.stage ?? ""} (measure`);
  });
});

describe("the built-in HF side of the new families", () => {
  it("agrees with the naive float64 reference on every fixture and on Qwen2-MoE's transformers-5 fused layout", async () => {
    const dir = await makeTempDir();
    const fused = join(dir, "qwen2-moe-fused");
    const gen = await runPythonAsync([join(REPO, "fixtures", "make_tiny_model.py"), fused, "--arch", "qwen2-moe", "--fused"]);
    expect(gen.status, gen.stderr).toBe(0);
    const tokens = JSON.stringify([
      [1, 17, 200, 42, 249, 3, 99, 128, 127, 5, 64, 180],
      [249, 0, 12, 77, 240, 126, 130, 2, 9, 88, 190, 45],
    ]);
    const runs: [string, string][] = [
      ["tiny-llama", ""],
      ["tiny-mistral", ""],
      ["tiny-qwen2-moe", ""],
      ["tiny-qwen3-moe", ""],
      ["tiny-qwen2-moe", fused],
    ];
    const outs = await Promise.all(
      runs.map(([fixture, builtin]) => {
        const hf = join(REPO, "fixtures", fixture);
        return runPythonAsync([NAIVE, hf, PYTHON_DIR, tokens, ...(builtin === "" ? [] : [builtin])]);
      }),
    );
    outs.forEach((run, i) => {
      expect(run.status, run.stderr).toBe(0);
      const out = JSON.parse(run.stdout) as { naive: number; builtin: number };
      const name = runs[i]?.join(" ") ?? "";
      expect({ name, naive: out.naive > 4 }).toEqual({ name, naive: true });
      expect({ name, close: Math.abs(out.builtin - out.naive) / out.naive < 1e-6 }).toEqual({ name, close: true });
    });
  });
});
