import { join } from "node:path";
import { expect } from "vitest";
import type { TargetOptions } from "../../src/commands/build-plan.js";
import { runPythonScript } from "./python.js";
import { REPO } from "./tiny-model.js";

/** test/support/reference_mcore.py: the torch oracle written from the Megatron facts, not from our code. */
export const ORACLE = join(REPO, "test", "support", "reference_mcore.py");

export function oracleArgs(t: TargetOptions): string[] {
  const l = t.layout;
  const args = ["--tp", String(l.tp), "--pp", String(l.pp), "--ep", String(l.ep), "--spec", t.spec, "--experts", t.experts];
  if (l.vpp > 1) {
    args.push("--vpp", String(l.vpp));
  }
  if (l.ppFirstLayers !== undefined) {
    args.push("--pp-first-layers", String(l.ppFirstLayers));
  }
  if (l.ppLastLayers !== undefined) {
    args.push("--pp-last-layers", String(l.ppLastLayers));
  }
  if (t.dtype !== undefined) {
    args.push("--dtype", { BF16: "bf16", F16: "fp16", F32: "fp32" }[t.dtype as "BF16"] ?? "keep");
  }
  return args;
}

/** The oracle torch.load's every rank file of `out` and finds nothing wrong against `hf`. */
export function expectOracleAgrees(hf: string, out: string, target: TargetOptions): void {
  const oracle = runPythonScript(ORACLE, [hf, out, ...oracleArgs(target)]);
  const verdict = JSON.parse(oracle.stdout || "{}") as { ok?: boolean; problems?: string[]; tensors_checked?: number };
  expect(verdict.problems ?? [oracle.stderr]).toEqual([]);
  expect(verdict.ok).toBe(true);
  expect(verdict.tensors_checked ?? 0).toBeGreaterThan(0);
}
