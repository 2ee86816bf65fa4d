import { open, truncate } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readTorchCheckpointFile } from "../../src/formats/torch/checkpoint-reader.js";
import { PyDict, TensorRef } from "../../src/formats/torch/pickle/values.js";
import { modelChunks } from "../../src/megatron/detect.js";
import { FIXTURE, runCli } from "../support/run-cli.js";
import { makeTempDir } from "../support/tmpdir.js";

/** verify exact with rank files checked in worker threads (--jobs > 1, the built CLI) against one thread. */

async function converted(): Promise<string> {
  const out = join(await makeTempDir(), "mcore");
  const result = runCli(["hf2mcore", FIXTURE, out, "--tp", "2", "--pp", "2", "--ep", "2", "--quiet"]);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return out;
}

/** Flips one byte in the middle of `key`'s data in one rank file. */
async function flipByte(mcore: string, rankDir: string, key: string): Promise<void> {
  const path = join(mcore, "release", rankDir, "model_optim_rng.pt");
  const { root } = await readTorchCheckpointFile(path);
  const model = new Map(modelChunks(root as PyDict)).get("model");
  const tensor = model?.get(key);
  if (!(tensor instanceof TensorRef)) {
    throw new Error(`no tensor ${key} in ${path}`);
  }
  const { offset, length } = tensor.contiguousRange();
  const file = await open(path, "r+");
  try {
    const at = offset + Math.floor(length / 2);
    const byte = new Uint8Array(1);
    await file.read(byte, 0, 1, at);
    byte[0] = (byte[0] ?? 0) ^ 0x40;
    await file.write(byte, 0, 1, at);
  } finally {
    await file.close();
  }
}

function verifyJson(mcore: string, jobs: number): { code: number; report: { ok: boolean; filesChecked: number; tensorsChecked: number; bytesCompared: number; differences: unknown[]; threads: number } } {
  const result = runCli(["verify", FIXTURE, mcore, "--json", "--jobs", String(jobs)]);
  return { code: result.code, report: JSON.parse(result.stdout) };
}

describe("verify exact in worker threads", () => {
  it("finds the same differences, counts and bytes as one thread", async () => {
    const mcore = await converted();
    const clean = verifyJson(mcore, 3);
    expect(clean.code).toBe(0);
    expect(clean.report.filesChecked).toBe(8);
    await flipByte(mcore, "mp_rank_01_000_001", "decoder.layers.0.mlp.experts.local_experts.1.linear_fc2.weight");
    await flipByte(mcore, "mp_rank_00_001_000", "decoder.layers.1.self_attention.linear_qkv.weight");
    const single = verifyJson(mcore, 1);
    const threaded = verifyJson(mcore, 3);
    expect(single.code).toBe(1);
    expect(threaded.code).toBe(1);
    expect(threaded.report.differences).toEqual(single.report.differences);
    expect(threaded.report.differences.map((d) => (d as { key: string }).key)).toEqual([
      "model/decoder.layers.1.self_attention.linear_qkv.weight",
      "model/decoder.layers.0.mlp.experts.local_experts.1.linear_fc2.weight",
    ]);
    const counts = (r: typeof single.report) => [r.filesChecked, r.tensorsChecked, r.bytesCompared];
    expect(counts(threaded.report)).toEqual(counts(single.report));
    expect([single.report.threads, threaded.report.threads, clean.report.threads]).toEqual([1, 3, 3]);
  });

  it("reports a broken rank file with the same error as one thread", async () => {
    const mcore = await converted();
    await truncate(join(mcore, "release", "mp_rank_01_001_001", "model_optim_rng.pt"), 1000);
    const single = runCli(["verify", FIXTURE, mcore, "--jobs", "1"]);
    const threaded = runCli(["verify", FIXTURE, mcore, "--jobs", "4"]);
    expect(single.code).toBe(2);
    expect(threaded.code).toBe(2);
    expect(threaded.stderr).toContain("mp_rank_01_001_001");
    expect(threaded.stderr).toBe(single.stderr);
  });
});
