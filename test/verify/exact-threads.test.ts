import { spawnSync } from "node:child_process";
import { truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { readTorchCheckpointFile } from "../../src/formats/torch/checkpoint-reader.js";
import { PyDict, TensorRef } from "../../src/formats/torch/pickle/values.js";
import { modelChunks } from "../../src/megatron/detect.js";
import { ConvertError } from "../../src/errors.js";
import type { PoolRequest } from "../../src/engine/worker-pool.js";
import { threadChecker } from "../../src/verify/exact-threads.js";
import { FIXTURE, runCli } from "../support/run-cli.js";
import { flipByte as flipByteAt } from "../support/flip-byte.js";
import { makeTempDir } from "../support/tmpdir.js";
import { REPO } from "../support/tiny-model.js";

/**
 * verify exact with rank files checked in worker threads against one thread. The worker script
 * exists only compiled, so this drives the built dist/ (what the CLI runs); threads are forced on,
 * since by default a 2-CPU machine checks in one thread.
 */
type VerifyExact = typeof import("../../src/commands/verify.js").verifyExact;
const built = (): Promise<{ verifyExact: VerifyExact }> => import(join(REPO, "dist", "commands", "verify.js"));

async function converted(): Promise<string> {
  const out = join(await makeTempDir(), "mcore");
  const result = runCli(["hf2mcore", FIXTURE, out, "--tp", "2", "--pp", "2", "--ep", "2", "--quiet"]);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return out;
}

/** Flips one byte of `key`'s data in one rank file, `fraction` of the way into it (the middle by default). */
async function flipByte(mcore: string, rankDir: string, key: string, fraction = 0.5): Promise<void> {
  const path = join(mcore, "release", rankDir, "model_optim_rng.pt");
  const { root } = await readTorchCheckpointFile(path);
  const model = new Map(modelChunks(root as PyDict)).get("model");
  const tensor = model?.get(key);
  if (!(tensor instanceof TensorRef)) {
    throw new Error(`no tensor ${key} in ${path}`);
  }
  const { offset, length } = tensor.contiguousRange();
  await flipByteAt(path, offset + Math.floor(length * fraction));
}

/** A worker script (in a temp folder) that serves byte checks from the built dist/, its source opened by `open` (JS source). */
async function servingWorker(name: string, open: string): Promise<string> {
  const script = join(await makeTempDir(), name);
  const serve = pathToFileURL(join(REPO, "dist", "verify", "exact-threads.js")).href;
  await writeFile(
    script,
    `import { parentPort } from "node:worker_threads";
import { serveByteChecks } from ${JSON.stringify(serve)};
serveByteChecks(parentPort, ${open});
`,
  );
  return script;
}

async function verify(mcore: string, jobs: number, threads: boolean, checkBytes?: number) {
  const { verifyExact } = await built();
  return verifyExact({ hf: FIXTURE, mcore, jobs, threads, ...(checkBytes === undefined ? {} : { checkBytes }) });
}

/** A check a broken worker never gets to: it fails before opening any file. */
const NO_FILE = { kind: "whole", path: "/nonexistent", label: "x", tensors: [] } as const;

describe("verify exact in worker threads", () => {
  it("finds the same differences, counts and bytes as one thread", async () => {
    const mcore = await converted();
    const clean = await verify(mcore, 3, true);
    expect(clean.ok).toBe(true);
    expect(clean.filesChecked).toBe(8);
    await flipByte(mcore, "mp_rank_01_000_001", "decoder.layers.0.mlp.experts.local_experts.1.linear_fc2.weight");
    await flipByte(mcore, "mp_rank_00_001_000", "decoder.layers.1.self_attention.linear_qkv.weight");
    const single = await verify(mcore, 3, false);
    const threaded = await verify(mcore, 3, true);
    expect(single.ok).toBe(false);
    expect(threaded.differences).toEqual(single.differences);
    expect(threaded.differences.map((d) => d.key)).toEqual([
      "model/decoder.layers.1.self_attention.linear_qkv.weight",
      "model/decoder.layers.0.mlp.experts.local_experts.1.linear_fc2.weight",
    ]);
    const counts = (r: typeof single) => [r.filesChecked, r.tensorsChecked, r.bytesCompared];
    expect(counts(threaded)).toEqual(counts(single));
    expect([single.threads, threaded.threads, clean.threads]).toEqual([1, 3, 3]);
  });

  it("checking every HF tensor in windows of a few rows, across threads, finds what whole checks in one thread find", async () => {
    const mcore = await converted();
    expect((await verify(mcore, 3, true, 2048)).ok).toBe(true);
    const embedding = "embedding.word_embeddings.weight";
    await flipByte(mcore, "mp_rank_01_000_001", embedding, 0.9);
    await flipByte(mcore, "mp_rank_01_000_001", embedding, 0.2); // the lower one, in an earlier window: the one reported
    await flipByte(mcore, "mp_rank_00_001_000", "decoder.layers.1.self_attention.linear_qkv.weight", 0.7);
    const whole = await verify(mcore, 1, false);
    const inWindows = await verify(mcore, 3, true, 2048);
    expect(whole.differences.map((d) => d.key)).toEqual(["model/decoder.layers.1.self_attention.linear_qkv.weight", `model/${embedding}`]);
    expect(inWindows.differences).toEqual(whole.differences);
    expect([inWindows.tensorsChecked, inWindows.bytesCompared]).toEqual([whole.tensorsChecked, whole.bytesCompared]);
  });

  it("reports a broken rank file with the same error as one thread", async () => {
    const mcore = await converted();
    await truncate(join(mcore, "release", "mp_rank_01_001_001", "model_optim_rng.pt"), 1000);
    const failure = (run: Promise<unknown>): Promise<Error & { code?: string }> =>
      run.then(
        () => new Error("verify did not fail"),
        (e: unknown) => e as Error & { code?: string },
      );
    const single = await failure(verify(mcore, 4, false));
    const threaded = await failure(verify(mcore, 4, true));
    expect(threaded).toBeInstanceOf(Error);
    expect(threaded.message).toContain("mp_rank_01_001_001");
    expect([threaded.code, threaded.message]).toEqual([single.code, single.message]);
  });

  it("works from a process started with flags a worker cannot take (node --input-type=module -e)", async () => {
    const mcore = await converted();
    const script = `const { verifyExact } = await import(${JSON.stringify(join(REPO, "dist", "commands", "verify.js"))});
      const r = await verifyExact({ hf: ${JSON.stringify(FIXTURE)}, mcore: ${JSON.stringify(mcore)}, jobs: 2, threads: true });
      console.log(JSON.stringify([r.ok, r.threads]));`;
    const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    expect(result.stderr).toBe("");
    expect(result.stdout.trim()).toBe("[true,2]");
  });

  it("fails every check with a clear error, and closes, when a thread cannot start", async () => {
    const script = join(await makeTempDir(), "broken-worker.js");
    await writeFile(script, 'throw new Error("this worker cannot start");\n');
    const checker = threadChecker(script, {}, 2);
    const results = await Promise.allSettled([checker.run(NO_FILE), checker.run(NO_FILE), checker.run(NO_FILE)]);
    for (const r of results) {
      expect(r.status).toBe("rejected");
      const reason = (r as PromiseRejectedResult).reason as Error & { code?: string };
      expect([reason.code, reason.message]).toEqual(["verify.thread-failed", "a verify worker thread failed while checking x: this worker cannot start"]);
    }
    await expect(checker.close()).resolves.toBeUndefined();
  });

  it("opens the source as soon as the thread starts, before any check is sent", async () => {
    const script = await servingWorker(
      "opening-worker.mjs",
      `async () => {
  parentPort.postMessage({ opening: true });
  return { space: {}, close: async () => parentPort.postMessage({ closing: true }) };
}`,
    );
    const worker = new Worker(script);
    const messages: unknown[] = [];
    worker.on("message", (m: unknown) => messages.push(m));
    const exited = new Promise<number>((resolve) => worker.once("exit", resolve));
    try {
      const first = await Promise.race([
        new Promise<unknown>((resolve) => worker.once("message", resolve)),
        new Promise<string>((resolve) => setTimeout(() => resolve("no message within 10 s"), 10_000)),
      ]);
      expect(first).toEqual({ opening: true });
      worker.postMessage({ type: "close" } satisfies PoolRequest<never>);
      expect(await exited).toBe(0);
      expect(messages).toEqual([{ opening: true }, { closing: true }]);
    } finally {
      await worker.terminate();
    }
  });

  it("reports a bug in a thread as a bug, not as a user error, and still closes", async () => {
    const script = await servingWorker("buggy-worker.mjs", 'async () => { throw new TypeError("a bug while opening the source"); }');
    const checker = threadChecker(script, {}, 1);
    const error = (await checker.run(NO_FILE).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(ConvertError);
    expect(error.message).toContain("a bug while opening the source");
    await expect(checker.close()).resolves.toBeUndefined();
  });
});
