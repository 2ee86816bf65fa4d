import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hf2mcore } from "../../src/commands/convert.js";
import type { TargetOptions } from "../../src/commands/build-plan.js";
import { ConvertError } from "../../src/errors.js";
import type { ParallelLayout } from "../../src/model/parallel-layout.js";
import { verifyExact } from "../../src/commands/verify.js";
import { expectOracleAgrees } from "../support/oracle.js";
import { runPythonScript } from "../support/python.js";
import { FIXTURE } from "../support/run-cli.js";
import { makeTempDir } from "../support/tmpdir.js";
import { REPO } from "../support/tiny-model.js";
import { targetOf } from "../support/targets.js";

/** Converts the fixture, then checks with the independent torch oracle and with verify exact. */
async function convertAndCheck(target: TargetOptions, hf = FIXTURE): Promise<string> {
  const out = join(await makeTempDir(), "mcore");
  await hf2mcore({ ...target, hf, out, jobs: 2 });
  expectOracleAgrees(hf, out, target);
  const report = await verifyExact({ hf, mcore: out, jobs: 2 });
  expect(report.differences).toEqual([]);
  expect(report.ok).toBe(true);
  expect(report.tensorsChecked).toBeGreaterThan(0);
  return out;
}

const MATRIX: Partial<ParallelLayout>[] = [];
for (const tp of [1, 2, 4]) {
  for (const pp of [1, 2]) {
    for (const ep of [1, 2, 4, 8]) {
      MATRIX.push({ tp, pp, ep });
    }
  }
}

describe("hf2mcore over the layout matrix (TP 1,2,4 x PP 1,2 x EP 1,2,4,8), checked by the torch oracle and verify", () => {
  for (const l of MATRIX) {
    it(`TP=${l.tp} PP=${l.pp} EP=${l.ep}`, async () => {
      await convertAndCheck(targetOf(l));
    });
  }
});

describe("hf2mcore: specs, expert implementations, virtual and uneven pipelines, dtypes", () => {
  const cases: [string, TargetOptions][] = [
    ["the seed's TP=4 EP=4, TE spec", targetOf({ tp: 4, ep: 4 })],
    ["local spec, sequential experts, TP=2 PP=2 EP=2", targetOf({ tp: 2, pp: 2, ep: 2 }, "local", "sequential")],
    ["TE grouped experts, TP=2 EP=4", targetOf({ tp: 2, ep: 4 }, "te", "te-grouped")],
    ["legacy GroupedMLP, TP=2 EP=2", targetOf({ tp: 2, ep: 2 }, "local", "grouped")],
    ["legacy GroupedMLP, TE spec, PP=2 EP=8", targetOf({ pp: 2, ep: 8 }, "te", "grouped")],
    ["VPP=2 over PP=2 (model0/model1)", targetOf({ pp: 2, vpp: 2, tp: 2 })],
    ["uneven PP: first stage 1 layer", targetOf({ pp: 2, ppFirstLayers: 1, ep: 2 })],
    ["uneven PP: last stage 2 layers, 3 stages", targetOf({ pp: 3, ppLastLayers: 2, tp: 2 })],
    ["--dtype fp32", { ...targetOf({ tp: 2 }), dtype: "F32" }],
  ];
  for (const [name, target] of cases) {
    it(name, async () => {
      await convertAndCheck(target);
    });
  }

  it("reads the transformers-5 fused expert layout and writes the same checkpoint", async () => {
    const fused = join(await makeTempDir(), "fused");
    const gen = runPythonScript(join(REPO, "fixtures", "make_tiny_mixtral.py"), [fused, "--fused"]);
    expect(gen.status, gen.stderr).toBe(0);
    const out = await convertAndCheck(targetOf({ tp: 2, ep: 2 }), fused);
    const againstPerExpert = await verifyExact({ hf: FIXTURE, mcore: out, jobs: 2 });
    expect(againstPerExpert.ok).toBe(true);
  });

  it("writes the tracker, the manifest and the Megatron flags", async () => {
    const out = await convertAndCheck(targetOf({ tp: 2, ep: 2 }));
    expect(await readFile(join(out, "latest_checkpointed_iteration.txt"), "utf8")).toBe("release");
    expect((await readdir(join(out, "release"))).sort()).toEqual(["mp_rank_00_000", "mp_rank_00_001", "mp_rank_01_000", "mp_rank_01_001"]);
    const flags = await readFile(join(out, "megatron-flags.txt"), "utf8");
    for (const flag of ["--num-experts 8", "--moe-router-topk 2", "--rotary-base 1000000", "--num-query-groups 4", "--normalization RMSNorm", "--swiglu", "--untie-embeddings-and-output-weights", "--disable-bias-linear"]) {
      expect(flags).toContain(flag);
    }
    expect(flags).not.toContain("--moe-grouped-gemm");
  });
});

describe("hf2mcore refuses bad layouts before writing anything", () => {
  const bad: [Partial<ParallelLayout>, RegExp][] = [
    [{ tp: 3 }, /TP=3 does not divide num_attention_heads=8/],
    [{ tp: 8 }, /TP=8 does not divide num_key_value_heads \(query groups\)=4/],
    [{ ep: 3 }, /EP=3 does not divide num_experts=8/],
    [{ pp: 3 }, /PP=3 does not divide num_layers=4/],
    [{ pp: 2, vpp: 4 }, /PP x VPP = 8 does not divide num_layers=4/],
    [{ pp: 2, ppFirstLayers: 3, ppLastLayers: 2 }, /uneven pipeline split does not add up/],
  ];
  for (const [layout, message] of bad) {
    it(JSON.stringify(layout), async () => {
      const out = join(await makeTempDir(), "never");
      const error = await hf2mcore({ ...targetOf(layout), hf: FIXTURE, out, jobs: 1 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConvertError);
      expect((error as ConvertError).code).toBe("layout.invalid");
      expect((error as Error).message).toMatch(message);
      expect(existsSync(out)).toBe(false);
    });
  }
});
