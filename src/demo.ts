import { spawnSync } from "node:child_process";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PACKAGE_ROOT } from "./package-root.js";

/**
 * `npm run demo`: converts the bundled tiny Mixtral at TP=2 PP=2 EP=2, verifies it exactly,
 * converts it back to HF and verifies that too, printing what each step did.
 */
const bin = join(PACKAGE_ROOT, "bin", "megatron-convert.js");
const fixture = join(PACKAGE_ROOT, "fixtures", "tiny-mixtral");
const work = join(tmpdir(), "megatron-convert-demo");
const mcore = join(work, "mcore-tp2-pp2-ep2");
const back = join(work, "hf-roundtrip");

function step(title: string, args: string[]): number {
  process.stdout.write(`\n$ megatron-convert ${args.join(" ")}\n`);
  const result = spawnSync(process.execPath, [bin, ...args], { stdio: "inherit" });
  const code = result.status ?? 2;
  process.stdout.write(`${code === 0 ? "ok" : `FAILED (exit ${code})`}: ${title}\n`);
  return code;
}

await rm(work, { recursive: true, force: true });
const codes = [
  step("convert the tiny Mixtral (8 experts, GQA, vocab 250) to Megatron-Core", ["hf2mcore", fixture, mcore, "--tp", "2", "--pp", "2", "--ep", "2", "--quiet"]),
  step("verify every rank file byte for byte against the HF tensors", ["verify", fixture, mcore]),
  step("convert back to HuggingFace", ["mcore2hf", mcore, back, "--hf-config", fixture, "--quiet"]),
  step("check the round trip is bit-exact", ["verify", fixture, back]),
];
process.stdout.write(`\noutputs are in ${work}\n`);
process.exitCode = codes.find((c) => c !== 0) ?? 0;
