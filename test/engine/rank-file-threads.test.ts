import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import type { RawTargetFlags } from "../../src/cli/layout-options.js";
import type { ProgressEvent } from "../../src/engine/progress.js";
import { fixtureCopy, readShard, SHARD } from "../support/corpus-hf.js";
import { FIXTURE } from "../support/run-cli.js";
import { makeTempDir } from "../support/tmpdir.js";
import { REPO } from "../support/tiny-model.js";

/**
 * Rank files written in worker threads against one thread. The worker script exists only
 * compiled, so this drives the built dist/ (what the CLI runs); threads are forced on, since by
 * default a 2-CPU machine writes in one thread.
 */
type Commands = {
  hf2mcore: typeof import("../../src/commands/convert.js").hf2mcore;
  reshard: typeof import("../../src/commands/reshard.js").reshard;
  targetFrom: typeof import("../../src/cli/layout-options.js").targetFrom;
};
const dist = (...path: string[]) => import(pathToFileURL(join(REPO, "dist", ...path)).href);
async function built(): Promise<Commands> {
  const [convert, reshard, layout] = await Promise.all([dist("commands", "convert.js"), dist("commands", "reshard.js"), dist("cli", "layout-options.js")]);
  return { hf2mcore: convert.hf2mcore, reshard: reshard.reshard, targetFrom: layout.targetFrom };
}

/** Every file under `dir` but the manifest (it holds the run's own numbers), by relative path. */
async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name !== "megatron-convert.json") {
      const path = join(entry.parentPath, entry.name);
      out.set(path.slice(dir.length + 1), await readFile(path));
    }
  }
  return out;
}

/** Bytes reported per file, and the files reported done. */
function progressOf(events: readonly ProgressEvent[]): { bytes: Record<string, number>; done: string[] } {
  const bytes: Record<string, number> = {};
  const done: string[] = [];
  for (const e of events) {
    if (e.kind === "bytes") {
      bytes[e.file] = (bytes[e.file] ?? 0) + e.bytes;
    } else if (e.kind === "file-done") {
      done.push(e.file);
    }
  }
  return { bytes, done: done.sort() };
}

async function failure(run: Promise<unknown>): Promise<Error & { code?: string }> {
  return run.then(
    () => new Error("it did not fail"),
    (e: unknown) => e as Error & { code?: string },
  );
}

describe("rank files written in worker threads", () => {
  it.each<{ flags: RawTargetFlags; what: string }>([
    { flags: { tp: 2, pp: 2, ep: 2 }, what: "TP2 PP2 EP2" },
    // legacy GroupedMLP's transposed pieces (assembled whole), cast to fp32, the local spec
    { flags: { tp: 2, ep: 4, experts: "grouped", dtype: "F32", spec: "local" }, what: "TP2 EP4, grouped experts, fp32, local spec" },
  ])("hf2mcore writes the same bytes, and reports the same progress, as one thread ($what)", async ({ flags }) => {
    const { hf2mcore, targetFrom } = await built();
    const dir = await makeTempDir();
    const target = targetFrom(flags);
    const events = { one: [] as ProgressEvent[], three: [] as ProgressEvent[] };
    const one = await hf2mcore({ ...target, hf: FIXTURE, out: join(dir, "one"), jobs: 3, threads: false, onProgress: (e) => events.one.push(e) });
    const three = await hf2mcore({ ...target, hf: FIXTURE, out: join(dir, "three"), jobs: 3, threads: true, onProgress: (e) => events.three.push(e) });
    expect([one.outcome?.threads, three.outcome?.threads]).toEqual([1, 3]);
    const [a, b] = [await filesOf(join(dir, "one")), await filesOf(join(dir, "three"))];
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    expect([...a.keys()].filter((k) => k.endsWith(".pt"))).toHaveLength(8);
    for (const [name, bytes] of a) {
      expect(b.get(name)?.equals(bytes), name).toBe(true);
    }
    expect(progressOf(events.three)).toEqual(progressOf(events.one));
    expect(progressOf(events.one).done).toHaveLength(8);
  });

  it("a split run (--worker I/N) writes each share in threads, and the last share publishes the same checkpoint", async () => {
    const { hf2mcore, targetFrom } = await built();
    const dir = await makeTempDir();
    const target = targetFrom({ tp: 2, pp: 2, ep: 2 });
    await hf2mcore({ ...target, hf: FIXTURE, out: join(dir, "whole"), jobs: 2, threads: false });
    const first = await hf2mcore({ ...target, hf: FIXTURE, out: join(dir, "split"), jobs: 2, threads: true, worker: { index: 0, count: 2 } });
    expect([first.outcome?.published, first.outcome?.threads]).toEqual([false, 2]);
    expect(existsSync(join(dir, "split"))).toBe(false);
    const last = await hf2mcore({ ...target, hf: FIXTURE, out: join(dir, "split"), jobs: 2, threads: true, worker: { index: 1, count: 2 } });
    expect([last.outcome?.published, last.outcome?.threads]).toEqual([true, 2]);
    const [a, b] = [await filesOf(join(dir, "whole")), await filesOf(join(dir, "split"))];
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [name, bytes] of a) {
      expect(b.get(name)?.equals(bytes), name).toBe(true);
    }
  });

  it("reshard writes the same bytes as one thread", async () => {
    const { hf2mcore, reshard, targetFrom } = await built();
    const dir = await makeTempDir();
    await hf2mcore({ ...targetFrom({ tp: 2, ep: 2 }), hf: FIXTURE, out: join(dir, "src"), jobs: 1 });
    const target = targetFrom({ tp: 1, pp: 2, ep: 4 });
    const one = await reshard({ ...target, mcore: join(dir, "src"), out: join(dir, "one"), jobs: 2, threads: false });
    const two = await reshard({ ...target, mcore: join(dir, "src"), out: join(dir, "two"), jobs: 2, threads: true });
    expect([one.outcome?.threads, two.outcome?.threads]).toEqual([1, 2]);
    const [a, b] = [await filesOf(join(dir, "one")), await filesOf(join(dir, "two"))];
    expect([...a.keys()].filter((k) => k.endsWith(".pt"))).toHaveLength(8);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [name, bytes] of a) {
      expect(b.get(name)?.equals(bytes), name).toBe(true);
    }
  });

  it("--check-finite names what the threads found, as one thread does, and writes nothing", async () => {
    const { hf2mcore, targetFrom } = await built();
    const dir = await makeTempDir();
    const hf = await fixtureCopy(dir);
    const shard = join(hf, SHARD);
    const { header } = await readShard(shard);
    const bytes = await readFile(shard);
    const headerBytes = Number(bytes.readBigUInt64LE(0));
    for (const name of ["model.norm.weight", "lm_head.weight"]) {
      const begin = (header[name]?.["data_offsets"] as number[] | undefined)?.[0];
      expect(begin, name).toBeTypeOf("number");
      bytes.writeUInt16LE(0x7fc0, 8 + headerBytes + (begin as number) + 2); // a bf16 NaN
    }
    await writeFile(shard, bytes);
    const target = targetFrom({ tp: 2, pp: 2 });
    const run = (out: string, threads: boolean) => failure(hf2mcore({ ...target, hf, out: join(dir, out), jobs: 4, threads, checkFinite: true }));
    const [one, four] = [await run("one", false), await run("four", true)];
    expect(four.code).toBe("tensor.non-finite");
    expect(four.message).toContain("decoder.final_layernorm.weight: 1 non-finite value(s)");
    expect(four.message).toContain("output_layer.weight: 1 non-finite value(s)");
    expect(four.message).toBe(one.message.replace(join(dir, "one"), join(dir, "four")));
    expect([existsSync(join(dir, "one")), existsSync(join(dir, "four"))]).toEqual([false, false]);
  });

  it.each([
    { layout: { tp: 2, ep: 2 }, jobs: 2, files: "4 files, 2 at once" },
    { layout: { tp: 2 }, jobs: 8, files: "2 files, --jobs 8" },
  ])("fails with a worker thread's error, naming the tensor, and leaves no output or staging folder ($files)", async ({ layout, jobs }) => {
    const [{ openHfModel }, { buildPlan }, { writeMegatronCheckpoint }, { targetFrom }] = await Promise.all([
      dist("commands", "hf-input.js"),
      dist("commands", "build-plan.js"),
      dist("engine", "write-megatron.js"),
      dist("cli", "layout-options.js"),
    ]);
    const dir = await makeTempDir();
    // a writer thread whose source fails to read the embedding (every TP x EP rank file holds it)
    const script = join(dir, "failing-writer.mjs");
    const url = (...p: string[]) => JSON.stringify(pathToFileURL(join(REPO, "dist", ...p)).href);
    await writeFile(
      script,
      `import { parentPort, workerData } from "node:worker_threads";
import { serveRankFiles } from ${url("engine", "rank-file-threads.js")};
import { openHfModel } from ${url("commands", "hf-input.js")};
import { ConvertError } from ${url("errors.js")};
class ReadFailed extends ConvertError { code = "test.read-failed"; }
serveRankFiles(parentPort, workerData, async (source) => {
  const model = await openHfModel(source.dir);
  const space = {
    describe: (name) => model.space.describe(name),
    readRect: (name, rect, into) => {
      if (name === "model.embed_tokens.weight") throw new ReadFailed(source.dir + ": cannot read " + name);
      return model.space.readRect(name, rect, into);
    },
  };
  return { space, close: () => model.close() };
});
`,
    );
    const model = await openHfModel(FIXTURE);
    const out = join(dir, "out");
    try {
      const { plan, args } = await buildPlan(model, targetFrom(layout));
      const error = await failure(
        writeMegatronCheckpoint({ out, plan, space: model.space, args, iteration: "release", jobs, threads: { script, source: { dir: FIXTURE }, count: 2 } }),
      );
      expect([error.code, error.message]).toEqual(["test.read-failed", `${FIXTURE}: cannot read model.embed_tokens.weight`]);
    } finally {
      await model.close();
    }
    expect(await readdir(dir)).toEqual(["failing-writer.mjs"]);
  });
});
