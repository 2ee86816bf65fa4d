import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hf2mcore } from "../../src/commands/convert.js";
import type { TargetOptions } from "../../src/commands/build-plan.js";
import type { ForwardReport } from "../../src/verify/forward-report.js";
import {
  FORWARD_SCRIPT,
  ForwardCheckError,
  findPython,
  NoPythonError,
  PythonFailedError,
  PythonTimeoutError,
  verifyForwardMany,
} from "../../src/verify/forward.js";
import { pythonWithTorch, runPythonScript } from "../support/python.js";
import { FIXTURE, runCli } from "../support/run-cli.js";
import { targetOf } from "../support/targets.js";
import { makeTempDir } from "../support/tmpdir.js";
import { REPO } from "../support/tiny-model.js";
import { hubEnv, hubWithCache, REPO_ID, runCliAsync } from "../hf/hub-support.js";

const PYTHON_DIR = join(REPO, "src", "verify", "python");
const HERE = join(REPO, "test", "verify", "python");
/** Breaks checkpoint copies with real torch; each folder's name says how. */
const BREAK = join(HERE, "break_checkpoint.py");
/** A per-token float64 numpy Mixtral written from transformers' semantics. */
const NAIVE = join(HERE, "naive_mixtral.py");
/** A stand-in transformers package for the transformers path of the HF side. */
const STAND_IN = join(HERE, "stand-in");

async function convert(dir: string, name: string, target: TargetOptions, hf = FIXTURE): Promise<string> {
  const out = join(dir, name);
  await hf2mcore({ ...target, hf, out, jobs: 2 });
  return out;
}

function reports(results: readonly (ForwardReport | ForwardCheckError)[]): ForwardReport[] {
  return results.map((r) => {
    if (r instanceof ForwardCheckError) {
      throw r;
    }
    return r;
  });
}

/** A shell script standing in for python3; `body` runs for the verifier, the torch probe always passes. */
async function fakePython(dir: string, body: string): Promise<string> {
  const path = join(dir, "fake-python");
  await writeFile(path, `#!/bin/bash\nif [ "$1" = "-c" ]; then exit 0; fi\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

describe("verify --forward passes on correct conversions (fp32, losses within 1e-5 relative)", () => {
  it("over TP/PP/EP/VPP/uneven layouts, both specs and all three expert implementations, in one Python process", async () => {
    const dir = await makeTempDir();
    // the HF side reads the transformers-5 fused layout of the same weights (the per-expert one is read by every other test)
    const fused = join(dir, "fused");
    const gen = runPythonScript(join(REPO, "fixtures", "make_tiny_mixtral.py"), [fused, "--fused"]);
    expect(gen.status, gen.stderr).toBe(0);
    const layouts: [string, TargetOptions, { spec: string; experts: string }][] = [
      ["tp2-pp2-ep2", targetOf({ tp: 2, pp: 2, ep: 2 }), { spec: "te", experts: "sequential" }],
      ["tp4-ep4", targetOf({ tp: 4, ep: 4 }), { spec: "te", experts: "sequential" }],
      ["vpp2", targetOf({ tp: 2, pp: 2, vpp: 2 }), { spec: "te", experts: "sequential" }],
      ["uneven-first", targetOf({ pp: 2, ppFirstLayers: 1, ep: 2 }), { spec: "te", experts: "sequential" }],
      ["uneven-last", targetOf({ pp: 3, ppLastLayers: 2, tp: 2 }), { spec: "te", experts: "sequential" }],
      ["local", targetOf({ tp: 2, pp: 2, ep: 2 }, "local", "sequential"), { spec: "local", experts: "sequential" }],
      ["te-grouped", targetOf({ tp: 2, ep: 4 }, "te", "te-grouped"), { spec: "te", experts: "te-grouped" }],
      ["grouped", targetOf({ tp: 2, ep: 2 }, "local", "grouped"), { spec: "local", experts: "grouped" }],
      ["grouped-pp2-ep8-fp32", { ...targetOf({ pp: 2, ep: 8 }, "te", "grouped"), dtype: "F32" }, { spec: "te", experts: "grouped" }],
    ];
    const outs = await Promise.all(layouts.map(([name, target]) => convert(dir, name, target)));
    const results = reports(await verifyForwardMany({ hf: fused, mcore: outs[0] ?? "" }, outs));
    expect(results).toHaveLength(layouts.length);
    results.forEach((r, i) => {
      const [name, target, detected] = layouts[i] ?? ["", targetOf({}), { spec: "", experts: "" }];
      expect({ name, ok: r.ok, first: r.firstDifference }).toEqual({ name, ok: true, first: null });
      expect(r.losses.hf).toBeGreaterThan(4);
      expect(r.losses.relDiff ?? 1).toBeLessThanOrEqual(1e-5);
      expect(Math.abs((r.losses.megatron ?? 0) - (r.losses.hf ?? 0))).toBeLessThanOrEqual(1e-5 * (r.losses.hf ?? 0));
      expect(r.stages.map((s) => s.name)).toEqual(["embedding", "layer 0", "layer 1", "layer 2", "layer 3", "final_norm", "logits"]);
      expect({ name, spec: r.megatronSide.spec, experts: r.megatronSide.experts }).toEqual({ name, ...detected });
      expect(r.megatronSide.layout).toMatchObject({ tp: target.layout.tp, pp: target.layout.pp, ep: target.layout.ep, vpp: target.layout.vpp });
      expect(r.megatronSide.layout.paddedVocab).toBe(target.layout.tp === 4 ? 512 : 256);
    });
    const first = results[0];
    expect(first?.hfSide).toMatchObject({ implementation: "builtin", reason: "transformers is not installed", layout: "fused", weightDtype: "BF16" });
    expect(first?.input).toEqual({ source: "bundled-sample", tokenization: "byte-pairs-modulo-vocab", batch: 2, seqLen: 64, tokens: 128 });
    expect(first?.device).toBe("cpu");
    expect(first?.tolerance).toMatchObject({ loss: 1e-5, hidden: 1e-4 });
    expect(first?.peakMemory.end.rssBytes).toBeGreaterThan(10_000_000);
    expect(first?.peakMemory.end.cudaBytes).toBeNull();
  });

  it("bf16 compute passes with its looser defaults", async () => {
    const dir = await makeTempDir();
    const out = await convert(dir, "mcore", targetOf({ tp: 2, pp: 2, ep: 2 }));
    const [bf16] = reports(await verifyForwardMany({ hf: FIXTURE, mcore: out, computeDtype: "bf16" }, [out]));
    expect(bf16?.computeDtype).toBe("bf16");
    expect(bf16?.tolerance).toMatchObject({ loss: 1e-2, hidden: 0.1 });
    expect(bf16?.ok).toBe(true);
    expect(bf16?.losses.relDiff ?? 1).toBeLessThan(1e-2);
  });
});

describe("verify --forward fails on broken conversions and names the first differing layer", () => {
  it("swapped gate/up, experts exchanged between EP ranks, wrong QKV grouping, wrong vocab padding, wrong router mode; exit 1 from the CLI", async () => {
    const dir = await makeTempDir();
    const good = await convert(dir, "good", targetOf({ tp: 2, pp: 2, ep: 2 }));
    const cases: [string, string, number | null][] = [
      ["gateup", "layer 1", 1],
      ["experts", "layer 0", 0],
      ["qkv", "layer 2", 2],
      ["vocab", "embedding", null],
      ["router", "layer 0", 0],
    ];
    const broken = await Promise.all(
      cases.map(async ([name]) => {
        await cp(good, join(dir, name), { recursive: true });
        return join(dir, name);
      }),
    );
    const broke = runPythonScript(BREAK, broken);
    expect(broke.status, broke.stderr).toBe(0);
    const results = reports(await verifyForwardMany({ hf: FIXTURE, mcore: good }, [good, ...broken]));
    expect(results[0]?.ok).toBe(true);
    results.slice(1).forEach((r, i) => {
      const [name, stage, layer] = cases[i] ?? ["", "", null];
      expect({ name, ok: r.ok, first: r.firstDifference?.name, layer: r.firstDifference?.layer }).toEqual({ name, ok: false, first: stage, layer });
      expect(r.firstDifference?.measure ?? 0).toBeGreaterThan(100 * r.tolerance.hidden);
      const before = r.stages.slice(0, r.stages.findIndex((s) => s.name === stage));
      expect(before.every((s) => s.ok && (s.measure ?? 1) < 1e-5)).toBe(true);
    });
    // the one-expert gate/up swap moves the loss by less than 1e-5: only the per-layer check sees it
    expect(results[1]?.losses.relDiff ?? 1).toBeLessThan(1e-5);
    expect(results[1]?.losses.ok).toBe(true);
    expect(results.slice(2).every((r) => !r.losses.ok)).toBe(true);
    expect(runCli(["verify", FIXTURE, join(dir, "router")]).code).toBe(0);

    // the same through the CLI: exit 0 with --json; exit 1, the table and --report
    const ok = runCli(["verify", FIXTURE, good, "--forward", "--json", "--seq-len", "32", "--batch", "3"]);
    expect(ok.code, ok.stderr).toBe(0);
    const json = JSON.parse(ok.stdout) as ForwardReport;
    expect(json).toMatchObject({ schemaVersion: 1, mode: "forward", ok: true, hf: FIXTURE, mcore: good, input: { batch: 3, seqLen: 32 } });
    expect(json.python.path).toBe(pythonWithTorch());
    const report = join(dir, "report.json");
    const r = runCli(["verify", FIXTURE, join(dir, "qkv"), "--forward", "--report", report]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toContain("verify forward: FAIL");
    expect(r.stdout).toMatch(/first difference: layer 2 \(measure/);
    expect(r.stdout).toMatch(/layer 1 +\S+ +\S+ +\S+ +\S+ +ok/);
    expect(r.stdout).toMatch(/layer 2 +\S+ +\S+ +\S+ +\S+ +DIFFERENT/);
    const saved = JSON.parse(await readFile(report, "utf8")) as ForwardReport;
    expect(saved).toMatchObject({ schemaVersion: 1, mode: "forward", ok: false, firstDifference: { name: "layer 2", layer: 2, ok: false } });
  });
});

describe("the built-in HF Mixtral", () => {
  it("agrees with a naive per-token float64 numpy reference written from transformers' semantics", () => {
    const tokens = [
      [1, 17, 200, 42, 249, 3, 99, 128, 127, 5, 64, 180, 7, 7, 150, 33],
      [249, 0, 12, 77, 240, 126, 130, 2, 9, 88, 190, 45, 61, 200, 100, 11],
    ];
    const run = runPythonScript(NAIVE, [FIXTURE, PYTHON_DIR, JSON.stringify(tokens)]);
    expect(run.status, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { naive: number; builtin: number };
    expect(out.naive).toBeGreaterThan(4);
    expect(Math.abs(out.builtin - out.naive) / out.naive).toBeLessThan(1e-6);
  });
});

describe("the transformers path of the HF side", () => {
  it("is chosen when transformers is importable: hooks capture every stage, tuple outputs are unwrapped, the version is reported", async () => {
    const dir = await makeTempDir();
    const out = await convert(dir, "mcore", targetOf({ tp: 2, pp: 2, ep: 2 }));
    const env = { ...process.env, PYTHONPATH: STAND_IN, PYTHONDONTWRITEBYTECODE: "1" };
    const [viaTransformers] = reports(await verifyForwardMany({ hf: FIXTURE, mcore: out, env }, [out]));
    expect(viaTransformers?.hfSide).toMatchObject({ implementation: "transformers", reason: "transformers 0.0.0-stand-in", transformersVersion: "0.0.0-stand-in" });
    expect(viaTransformers?.stages.map((st) => st.name)).toEqual(["embedding", "layer 0", "layer 1", "layer 2", "layer 3", "final_norm", "logits"]);
    expect(viaTransformers?.ok).toBe(true);
    expect(viaTransformers?.losses.relDiff ?? 1).toBeLessThanOrEqual(1e-5);
  });
});

describe("verify --forward inputs, errors and the Python process", () => {
  it("--tokens as a list of rows (HF side from a Hub repo id); --text needs a tokenizer; out-of-vocab ids; --engine megatron needs Megatron-Core and GPUs", async () => {
    const dir = await makeTempDir();
    const good = await convert(dir, "good", targetOf({ tp: 2, ep: 2 }));
    const rows = join(dir, "rows.json");
    await writeFile(rows, JSON.stringify([[1, 2, 3, 4, 5, 6, 7, 8, 9], [9, 8, 7, 6, 5, 4, 3, 2], [100, 200, 249, 0, 1, 2, 3, 4]]));
    // the HF side from a Hub repo id: downloaded into the HF cache, its snapshot folder read by Python
    const { server, cacheDir } = await hubWithCache();
    const tok = await runCliAsync(["verify", REPO_ID, good, "--forward", "--tokens", rows, "--batch", "2", "--json"], hubEnv(server, cacheDir));
    expect(tok.code, tok.stderr).toBe(0);
    const viaHub = JSON.parse(tok.stdout) as ForwardReport;
    expect(viaHub.input).toEqual({ source: "tokens", file: rows, tokenization: null, batch: 2, seqLen: 8, tokens: 16 });
    expect([viaHub.ok, viaHub.hf]).toEqual([true, REPO_ID]);
    expect(existsSync(join(cacheDir, "models--acme--tiny-mixtral"))).toBe(true);

    const text = join(dir, "t.txt");
    await writeFile(text, "hello");
    const t = runCli(["verify", FIXTURE, good, "--forward", "--text", text]);
    expect(t.code).toBe(2);
    expect(t.stderr).toContain("[verify.no-tokenizer]");
    expect(t.stderr).toContain("has no tokenizer.json");

    const oov = join(dir, "oov.json");
    await writeFile(oov, "[1, 2, 250, 3]");
    const o = runCli(["verify", FIXTURE, good, "--forward", "--tokens", oov]);
    expect(o.code).toBe(2);
    expect(o.stderr).toContain("token id 250 is outside the vocabulary [0, 250)");

    const m = runCli(["verify", FIXTURE, good, "--forward", "--engine", "megatron"]);
    expect(m.code).toBe(2);
    expect(m.stderr).toContain("[verify.engine-unavailable]");
    expect(m.stderr).toContain("megatron.core");
    expect(m.stderr).toContain("4 CUDA GPUs for TP=2 x PP=1 x EP=2");

    const both = runCli(["verify", FIXTURE, good, "--forward", "--text", text, "--tokens", rows]);
    expect(both.code).toBe(2);
    expect(runCli(["verify", FIXTURE, good, "--forward", "--device", "tpu"]).stderr).toContain("--device must be one of cuda, cpu");
  });

  it("no Python with torch: --python /bin/false, a Python without torch, MEGATRON_CONVERT_PYTHON; a torch that fails to import", async () => {
    const dir = await makeTempDir();
    const noTorch = join(dir, "python-no-torch");
    // -S: no site-packages, so Debian's dist-packages torch is out of reach
    await writeFile(noTorch, `#!/bin/sh\nexec ${pythonWithTorch()} -S "$@"\n`);
    await chmod(noTorch, 0o755);
    for (const python of ["/bin/false", noTorch]) {
      const r = runCli(["verify", FIXTURE, FIXTURE, "--forward", "--python", python]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("[verify.no-python]");
      expect(r.stderr).toContain("apt-get install python3-torch");
      expect(r.stderr).toContain(python === noTorch ? "(no torch)" : "does not run: exit 1");
    }
    const viaEnv = await findPython(undefined, { MEGATRON_CONVERT_PYTHON: noTorch }).catch((e: unknown) => e);
    expect(viaEnv).toBeInstanceOf(NoPythonError);
    expect((viaEnv as NoPythonError).tried).toEqual([{ python: `${noTorch} [MEGATRON_CONVERT_PYTHON]`, problem: "no torch" }]);
    expect(await findPython(undefined, {})).toEqual({ path: expect.any(String) as string, source: "default" });

    const fakeTorch = join(dir, "fake-torch");
    await mkdir(join(fakeTorch, "torch"), { recursive: true });
    await writeFile(join(fakeTorch, "torch", "__init__.py"), "raise ImportError('libtorch_cpu.so: cannot open shared object file')\n");
    const broken = await verifyForwardMany({ hf: FIXTURE, mcore: FIXTURE, env: { ...process.env, PYTHONPATH: fakeTorch } }, [FIXTURE]).catch((e: unknown) => e);
    expect(broken).toBeInstanceOf(ForwardCheckError);
    expect((broken as ForwardCheckError).code).toBe("verify.no-torch");
    expect((broken as Error).message).toContain("libtorch_cpu.so");
  });

  it("a crash keeps the last 20 stderr lines; a signal is reported; a timeout stops it", async () => {
    const dir = await makeTempDir();
    const crash = await fakePython(dir, 'for i in $(seq 1 30); do echo "line $i" >&2; done\nexit 7');
    const e = await verifyForwardMany({ hf: FIXTURE, mcore: FIXTURE, python: crash }, [FIXTURE]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PythonFailedError);
    const failed = e as PythonFailedError;
    expect([failed.code, failed.processExitCode, failed.signal]).toEqual(["verify.python-failed", 7, null]);
    expect(failed.stderrTail).toEqual(Array.from({ length: 20 }, (_, i) => `line ${i + 11}`));
    expect(failed.message).toContain("exited with status 7");

    const killed = join(dir, "killed");
    await mkdir(killed);
    const k = await verifyForwardMany({ hf: FIXTURE, mcore: FIXTURE, python: await fakePython(killed, "kill -KILL $$") }, [FIXTURE]).catch((x: unknown) => x);
    expect((k as PythonFailedError).signal).toBe("SIGKILL");
    expect((k as Error).message).toContain("was killed by SIGKILL");

    const slow = join(dir, "slow");
    await mkdir(slow);
    const started = performance.now();
    const s = await verifyForwardMany({ hf: FIXTURE, mcore: FIXTURE, python: await fakePython(slow, "exec sleep 30"), timeoutMs: 300 }, [FIXTURE]).catch((x: unknown) => x);
    expect(s).toBeInstanceOf(PythonTimeoutError);
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it("SIGINT to the CLI is relayed to the Python child, and the CLI exits 130", async () => {
    const dir = await makeTempDir();
    const ready = join(dir, "ready");
    const mark = join(dir, "got-sigint");
    const python = await fakePython(dir, `trap 'echo yes > ${mark}; exit 130' INT\ntouch ${ready}\nsleep 30 & wait`);
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [join(REPO, "bin", "megatron-convert.js"), "verify", FIXTURE, FIXTURE, "--forward", "--python", python], { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      const poll = setInterval(() => {
        if (existsSync(ready)) {
          clearInterval(poll);
          child.kill("SIGINT");
        }
      }, 50);
      child.on("exit", (code) => {
        clearInterval(poll);
        resolve({ code, stderr });
      });
    });
    expect(result.code, result.stderr).toBe(130);
    // verify writes no output folder, so the line says only the signal
    expect(result.stderr.trim().split("\n").at(-1)).toBe("megatron-convert: interrupted by SIGINT");
    for (let i = 0; i < 40 && !existsSync(mark); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(existsSync(mark)).toBe(true);
  });

  it("the verifier ships in the package: resolved from the package root, listed in package.json files", async () => {
    expect(existsSync(FORWARD_SCRIPT)).toBe(true);
    const pkg = JSON.parse(await readFile(join(REPO, "package.json"), "utf8")) as { files: string[] };
    expect(pkg.files).toContain("src/verify/python");
  });
});
