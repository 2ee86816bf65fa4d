import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runPython } from "../support/python.js";
import { FIXTURE, runCli } from "../support/run-cli.js";
import { REPO } from "../support/tiny-model.js";
import { makeTempDir } from "../support/tmpdir.js";

/** Edits one rank file with real torch (load, change, torch.save), as a careless tool would. */
function editRankFile(file: string, edit: string): void {
  runPython(
    [
      "import sys, torch",
      "path = sys.argv[1]",
      "sd = torch.load(path, map_location='cpu')",
      "m = sd['model']",
      edit,
      "torch.save(sd, path)",
    ].join("\n"),
    [file],
  );
}

/** Runs `command` on a pseudo-terminal (util-linux script) and returns what it drew there. */
async function onTerminal(command: readonly string[], log: string): Promise<string> {
  const r = spawnSync("script", ["-qec", command.map((a) => `'${a}'`).join(" "), log], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return readFile(log, "utf8");
}

/**
 * CLI arguments for node that run it with a module-resolution hook (node:module register), which
 * writes down every module the runs load; `loaded` reads that list.
 */
async function moduleLog(dir: string): Promise<{ hooked(args: readonly string[]): string[]; loaded(): Promise<string> }> {
  const log = join(dir, "resolved.txt");
  await writeFile(join(dir, "hooks.mjs"), `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, result.url + "\\n");
  return result;
}
`);
  await writeFile(join(dir, "register.mjs"), `import { register } from "node:module";\nregister("./hooks.mjs", import.meta.url);\n`);
  return {
    hooked: (args) => ["--import", join(dir, "register.mjs"), join(REPO, "bin", "megatron-convert.js"), ...args],
    loaded: () => readFile(log, "utf8"),
  };
}

describe("the command line", () => {
  it("prints help with exit 0 and lists the commands", () => {
    const r = runCli(["--help"]);
    expect(r.code).toBe(0);
    for (const c of ["hf2mcore", "mcore2hf", "reshard", "plan", "verify", "inspect"]) {
      expect(r.stdout).toContain(c);
    }
  });

  it("exits 2 on usage errors, with the reason", () => {
    expect(runCli(["frobnicate"]).code).toBe(2);
    const r = runCli(["hf2mcore", FIXTURE, "/tmp/x", "--tp", "zero"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--tp must be a positive integer");
    const etp = runCli(["plan", FIXTURE, "--tp", "2", "--etp", "1"]);
    expect(etp.code).toBe(2);
    expect(etp.stderr).toContain("--etp 1 differs from --tp 2");
  });

  it("exits 2 with a message naming the file for a folder that is not a model", async () => {
    const dir = await makeTempDir();
    const r = runCli(["hf2mcore", dir, join(dir, "out")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(join(dir, "config.json"));
    expect(existsSync(join(dir, "out"))).toBe(false);
  });

  it("draws a progress bar on a terminal (cli-progress, loaded only there) and plain lines elsewhere", async () => {
    const dir = await makeTempDir();
    const args = [process.execPath, join(REPO, "bin", "megatron-convert.js"), "hf2mcore", FIXTURE, join(dir, "tty"), "--tp", "2", "--ep", "2"];
    expect(await onTerminal(args, join(dir, "tty.log"))).toMatch(/100% \| 725 KiB\/725 KiB \| 4\/4 files/);
    const plain = runCli(["hf2mcore", FIXTURE, join(dir, "plain"), "--tp", "2", "--ep", "2"]);
    expect(plain.code).toBe(0);
    expect(plain.stderr).toMatch(/^\[4\/4\] release\/mp_rank_0[01]_00[01]\/model_optim_rng\.pt$/m);
    expect(plain.stderr).not.toContain("100%");
  });

  it("loads neither the Hub client nor cli-progress for local folders, nor cli-progress where no bar is drawn (start-up time)", async () => {
    const dir = await makeTempDir();
    const { hooked, loaded: loadedModules } = await moduleLog(dir);
    const out = join(dir, "out");
    const runs = [["plan", FIXTURE, "--tp", "2"], ["hf2mcore", FIXTURE, out, "--tp", "2"], ["verify", FIXTURE, out], ["mcore2hf", out, join(dir, "back"), "--hf-config", FIXTURE]];
    for (const args of runs) {
      const r = spawnSync(process.execPath, hooked(args), { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
    }
    // verify on a terminal too: it draws no bar
    expect(await onTerminal([process.execPath, ...hooked(["verify", FIXTURE, out])], join(dir, "tty.log"))).toContain("verify exact: OK");
    const loaded = await loadedModules();
    expect(loaded).toContain("/node_modules/commander/"); // the hook saw the runs' modules
    expect(loaded).toContain("/dist/commands/verify.js");
    expect(loaded).toContain("/dist/commands/mcore2hf.js");
    expect(loaded).not.toContain("@huggingface/hub");
    expect(loaded).not.toContain("cli-progress");
  });

  it("compares two HF folders without loading the plan, the torch reader or the Hub client (start-up time)", async () => {
    const { hooked, loaded } = await moduleLog(await makeTempDir());
    const r = spawnSync(process.execPath, hooked(["verify", FIXTURE, FIXTURE]), { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("verify exact: OK");
    const modules = await loaded();
    expect(modules).toContain("/dist/verify/compare-hf.js");
    for (const unused of ["/dist/commands/verify.js", "/dist/mapping/plan.js", "/dist/formats/torch/", "@huggingface/hub"]) {
      expect(modules).not.toContain(unused);
    }
  });

  it("hf2mcore --json says how many threads wrote the rank files: at least one, at most --jobs", async () => {
    const out = join(await makeTempDir(), "out");
    const r = runCli(["hf2mcore", FIXTURE, out, "--tp", "2", "--ep", "2", "--jobs", "3", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as { written: boolean; threads: unknown };
    expect(json.written).toBe(true);
    expect([1, 2, 3]).toContain(json.threads);
  });

  it("plans without writing, listing rank files and flags", () => {
    const r = runCli(["plan", FIXTURE, "--tp", "4", "--ep", "4", "--json"]);
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout) as { files: { path: string }[]; paddedVocab: number; megatronFlags: string[] };
    expect(plan.files.length).toBe(16);
    expect(plan.files[0]?.path).toBe("release/mp_rank_00_000/model_optim_rng.pt");
    expect(plan.paddedVocab).toBe(512);
    expect(plan.megatronFlags).toContain("--expert-model-parallel-size 4");
  });
});

describe("verify can fail: rank files edited after conversion", () => {
  const cases: [string, string, string, string][] = [
    [
      "gate and up swapped in one expert",
      "mp_rank_01_001",
      "k = 'decoder.layers.1.mlp.experts.local_experts.1.linear_fc1.weight'\nt = m[k]\nh = t.shape[0] // 2\nm[k] = torch.cat([t[h:], t[:h]]).clone()",
      "decoder.layers.1.mlp.experts.local_experts.1.linear_fc1.weight",
    ],
    [
      "two experts exchanged",
      "mp_rank_00_001",
      "a = 'decoder.layers.0.mlp.experts.local_experts.0.linear_fc2.weight'\nb = 'decoder.layers.0.mlp.experts.local_experts.3.linear_fc2.weight'\nm[a], m[b] = m[b].clone(), m[a].clone()",
      "decoder.layers.0.mlp.experts.local_experts.0.linear_fc2.weight",
    ],
    [
      "QKV grouped wrongly (k and v of a group swapped)",
      "mp_rank_00_000",
      "k = 'decoder.layers.2.self_attention.linear_qkv.weight'\nt = m[k].clone()\nt[16:24], t[24:32] = m[k][24:32].clone(), m[k][16:24].clone()\nm[k] = t",
      "decoder.layers.2.self_attention.linear_qkv.weight",
    ],
  ];
  for (const [name, rank, edit, key] of cases) {
    it(`${name}: exit 1 naming the tensor`, async () => {
      const dir = await makeTempDir();
      const out = join(dir, "mcore");
      expect(runCli(["hf2mcore", FIXTURE, out, "--tp", "2", "--ep", "2", "--quiet"]).code).toBe(0);
      expect(runCli(["verify", FIXTURE, out]).code).toBe(0);
      editRankFile(join(out, "release", rank, "model_optim_rng.pt"), edit);
      const report = join(dir, "report.json");
      const r = runCli(["verify", FIXTURE, out, "--report", report]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(key);
      const json = JSON.parse(await readFile(report, "utf8")) as { ok: boolean; differences: { key: string; hfTensors: string[] }[] };
      expect(json.ok).toBe(false);
      expect(json.differences.map((d) => d.key)).toContain(`model/${key}`);
    });
  }

  it("a missing rank folder and a missing key are differences too", async () => {
    const dir = await makeTempDir();
    const out = join(dir, "mcore");
    expect(runCli(["hf2mcore", FIXTURE, out, "--tp", "2", "--quiet"]).code).toBe(0);
    editRankFile(join(out, "release", "mp_rank_01", "model_optim_rng.pt"), "del m['decoder.layers.3.pre_mlp_layernorm.weight']");
    const r = runCli(["verify", FIXTURE, out, "--json"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("missing key");
    expect(r.stdout).toContain("decoder.layers.3.pre_mlp_layernorm.weight");
  });

  it("a tensor of the wrong dtype or shape is a difference naming its HF sources", async () => {
    const dir = await makeTempDir();
    const out = join(dir, "mcore");
    expect(runCli(["hf2mcore", FIXTURE, out, "--tp", "2", "--quiet"]).code).toBe(0);
    const qkv = "decoder.layers.1.self_attention.linear_qkv.weight";
    const norm = "decoder.final_layernorm.weight";
    editRankFile(join(out, "release", "mp_rank_01", "model_optim_rng.pt"), `m['${qkv}'] = m['${qkv}'].double()\nm['${norm}'] = m['${norm}'][:-1].clone()`);
    const r = runCli(["verify", FIXTURE, out, "--json"]);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { differences: { file: string; key: string; hfTensors: string[]; problem: string }[] };
    const byKey = new Map(report.differences.map((d) => [d.key, d]));
    expect(byKey.get(`model/${qkv}`)?.problem).toMatch(/^dtype F64; expected /);
    expect(byKey.get(`model/${qkv}`)?.hfTensors).toEqual(["model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight", "model.layers.1.self_attn.v_proj.weight"]);
    expect(byKey.get(`model/${norm}`)?.problem).toMatch(/^shape \[\d+\]; expected \[\d+\]$/);
    expect(byKey.get(`model/${norm}`)?.hfTensors).toEqual(["model.norm.weight"]);
    expect(report.differences.every((d) => d.file === "mp_rank_01/model_optim_rng.pt")).toBe(true);
  });
});
