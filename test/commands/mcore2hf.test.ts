import { existsSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hf2mcore } from "../../src/commands/convert.js";
import { mcore2hf } from "../../src/commands/mcore2hf.js";
import { reshard } from "../../src/commands/reshard.js";
import type { TargetOptions } from "../../src/commands/build-plan.js";
import { ConvertError } from "../../src/errors.js";
import { compareHfFolders } from "../../src/verify/compare-hf.js";
import { verifyExact } from "../../src/commands/verify.js";
import { runPython } from "../support/python.js";
import { FIXTURE } from "../support/run-cli.js";
import { makeTempDir } from "../support/tmpdir.js";
import { targetOf } from "../support/targets.js";

async function convert(target: TargetOptions, dir?: string): Promise<string> {
  const out = join(dir ?? (await makeTempDir()), `mcore-${Math.random().toString(36).slice(2)}`);
  await hf2mcore({ ...target, hf: FIXTURE, out, jobs: 2 });
  return out;
}

describe("hf -> mcore -> hf is bit-exact", () => {
  const layouts: TargetOptions[] = [
    targetOf({}),
    targetOf({ tp: 2, pp: 2, ep: 2 }),
    targetOf({ tp: 4, ep: 4 }, "te", "te-grouped"),
    targetOf({ tp: 2, ep: 8 }, "local", "grouped"),
    targetOf({ pp: 2, vpp: 2, tp: 2 }, "local", "sequential"),
    targetOf({ pp: 2, ppFirstLayers: 3, ep: 4 }),
  ];
  for (const target of layouts) {
    it(`${JSON.stringify(target.layout)} ${target.spec} ${target.experts}`, async () => {
      const mcore = await convert(target);
      const back = join(await makeTempDir(), "hf");
      const result = await mcore2hf({ mcore, out: back, maxShardBytes: 200_000, hfConfig: FIXTURE });
      expect(result.files.length).toBeGreaterThan(1);
      const report = await compareHfFolders(FIXTURE, back);
      expect(report.differences).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.tensorsChecked).toBe(result.tensors);
    });
  }

  it("builds config.json from the checkpoint's args when no --hf-config is given", async () => {
    const mcore = await convert(targetOf({ tp: 2, ep: 2 }));
    const back = join(await makeTempDir(), "hf");
    await mcore2hf({ mcore, out: back, maxShardBytes: 5e9 });
    const config = JSON.parse(await readFile(join(back, "config.json"), "utf8")) as Record<string, unknown>;
    const source = JSON.parse(await readFile(join(FIXTURE, "config.json"), "utf8")) as Record<string, unknown>;
    for (const key of ["architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "num_local_experts", "num_experts_per_tok", "vocab_size", "rms_norm_eps", "rope_theta", "max_position_embeddings", "tie_word_embeddings", "torch_dtype", "hidden_act"]) {
      expect([key, config[key]]).toEqual([key, source[key]]);
    }
    expect((await compareHfFolders(FIXTURE, back)).ok).toBe(true);
    expect(existsSync(join(back, "model.safetensors"))).toBe(true);
  });
});

describe("reshard A -> B equals hf -> B", () => {
  const pairs: [TargetOptions, TargetOptions][] = [
    [targetOf({ tp: 2, pp: 2, ep: 2 }), targetOf({ tp: 4, ep: 4 })],
    [targetOf({ tp: 4, ep: 2 }, "te", "te-grouped"), targetOf({ tp: 1, pp: 2, ep: 8 }, "local", "grouped")],
    [targetOf({ pp: 2, vpp: 2 }), targetOf({ pp: 2, ppFirstLayers: 1, tp: 2 }, "te", "sequential")],
    [targetOf({ tp: 2, ep: 8 }, "local", "grouped"), targetOf({ tp: 2, pp: 2, vpp: 2, ep: 2 }, "te", "te-grouped")],
  ];
  for (const [a, b] of pairs) {
    it(`${JSON.stringify(a.layout)} ${a.experts} -> ${JSON.stringify(b.layout)} ${b.experts}`, async () => {
      const source = await convert(a);
      const out = join(await makeTempDir(), "resharded");
      await reshard({ ...b, mcore: source, out, jobs: 2 });
      const report = await verifyExact({ hf: FIXTURE, mcore: out, jobs: 2 });
      expect(report.differences).toEqual([]);
      expect(report.ok).toBe(true);
      const direct = await convert(b);
      const compare = runPython(
        [
          "import sys, os, torch",
          "a, b = sys.argv[1], sys.argv[2]",
          "n = 0",
          "for d in sorted(os.listdir(os.path.join(a, 'release'))):",
          "    x = torch.load(os.path.join(a, 'release', d, 'model_optim_rng.pt'), map_location='cpu')",
          "    y = torch.load(os.path.join(b, 'release', d, 'model_optim_rng.pt'), map_location='cpu')",
          "    for mk in [k for k in x if k.startswith('model')]:",
          "        assert list(x[mk].keys()) == list(y[mk].keys()), (d, mk)",
          "        for k, v in x[mk].items():",
          "            if torch.is_tensor(v):",
          "                assert v.dtype == y[mk][k].dtype and torch.equal(v, y[mk][k]), (d, k)",
          "                n += 1",
          "print(n)",
        ].join("\n"),
        [out, direct],
      );
      expect(Number(compare.trim())).toBeGreaterThan(0);
    });
  }
});

describe("checkpoints saved by Megatron itself (real torch.save, TE extra state forms, optimizer and RNG state)", () => {
  it("converts back bit-exactly", async () => {
    const mcore = await convert(targetOf({ tp: 2, ep: 2 }));
    runPython(
      [
        "import sys, os, io, pickle, argparse, random, torch",
        "root = os.path.join(sys.argv[1], 'release')",
        "forms = []",
        "buf = io.BytesIO(); torch.save(None, buf); forms.append(buf)",
        "forms.append(torch.frombuffer(bytearray(pickle.dumps(None)), dtype=torch.uint8))",
        "forms.append(torch.empty(0, dtype=torch.uint8))",
        "forms.append(None)",
        "for i, d in enumerate(sorted(os.listdir(root))):",
        "    path = os.path.join(root, d, 'model_optim_rng.pt')",
        "    sd = torch.load(path, map_location='cpu')",
        "    for j, k in enumerate(list(sd['model'].keys())):",
        "        if k.endswith('_extra_state'):",
        "            sd['model'][k] = forms[(i + j) % len(forms)]",
        "    sd['optimizer'] = {'state': {0: {'exp_avg': torch.zeros(3)}}, 'param_groups': [{'lr': 1e-4, 'params': [0]}]}",
        "    sd['opt_param_scheduler'] = {'num_steps': 10}",
        "    sd['rng_state'] = [{'random_rng_state': random.getstate(), 'torch_rng_state': torch.get_rng_state()}]",
        "    os.remove(path)",
        "    torch.save(sd, path)",
      ].join("\n"),
      [mcore],
    );
    const back = join(await makeTempDir(), "hf");
    const result = await mcore2hf({ mcore, out: back, maxShardBytes: 5e9, hfConfig: FIXTURE });
    expect(result.notes.join(" ")).toContain("optimizer and RNG state");
    expect((await compareHfFolders(FIXTURE, back)).ok).toBe(true);
  });
});

describe("inconsistent checkpoints give clear errors and write nothing", () => {
  async function expectError(mcore: string, pattern: RegExp): Promise<void> {
    const out = join(await makeTempDir(), "never");
    const error = await mcore2hf({ mcore, out, maxShardBytes: 5e9, hfConfig: FIXTURE }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConvertError);
    expect((error as Error).message).toMatch(pattern);
    expect(existsSync(out)).toBe(false);
  }

  it("a missing rank folder", async () => {
    const mcore = await convert(targetOf({ tp: 2, ep: 2 }));
    await rm(join(mcore, "release", "mp_rank_01_001"), { recursive: true });
    await expectError(mcore, /mp_rank_01_001: missing rank folder/);
  });

  it("args that disagree with the folders", async () => {
    const mcore = await convert(targetOf({ tp: 2 }));
    runPython(
      "import sys, torch\np = sys.argv[1]\nsd = torch.load(p)\nsd['args'].tensor_model_parallel_size = 4\nsd['args'].expert_tensor_parallel_size = 4\ntorch.save(sd, p)",
      [join(mcore, "release", "mp_rank_00", "model_optim_rng.pt")],
    );
    await expectError(mcore, /missing rank folder/);
  });

  it("a rank file with a missing expert", async () => {
    const mcore = await convert(targetOf({ ep: 2 }));
    runPython(
      "import sys, torch\np = sys.argv[1]\nsd = torch.load(p)\ndel sd['model']['decoder.layers.2.mlp.experts.local_experts.3.linear_fc1.weight']\ntorch.save(sd, p)",
      [join(mcore, "release", "mp_rank_00_001", "model_optim_rng.pt")],
    );
    await expectError(mcore, /mp_rank_00_001\/model_optim_rng\.pt: missing tensor model\/decoder\.layers\.2\.mlp\.experts\.local_experts\.3\.linear_fc1\.weight/);
  });

  it("a config that disagrees with the args", async () => {
    const mcore = await convert(targetOf({}));
    const dir = await makeTempDir();
    const config = JSON.parse(await readFile(join(FIXTURE, "config.json"), "utf8")) as Record<string, unknown>;
    await import("node:fs/promises").then((fs) => fs.writeFile(join(dir, "config.json"), JSON.stringify({ ...config, num_hidden_layers: 6 })));
    const error = await mcore2hf({ mcore, out: join(dir, "out"), maxShardBytes: 5e9, hfConfig: dir }).catch((e: unknown) => e);
    expect((error as Error).message).toContain("the HF config says layers=6 but the checkpoint's args say 4");
  });
});
