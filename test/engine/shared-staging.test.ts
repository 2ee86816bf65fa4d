import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { stagingDirOf } from "../../src/engine/atomic-dir.js";
import { lockFileOf } from "../../src/engine/output-lock.js";
import { FIXTURE, runCli } from "../support/run-cli.js";
import { makeTempDir } from "../support/tmpdir.js";
import { REPO } from "../support/tiny-model.js";

const run = promisify(execFile);
const BIN = join(REPO, "bin", "megatron-convert.js");

/** One worker process, as a Slurm array task would start it; never throws, returns its exit. */
async function worker(args: readonly string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, [BIN, ...args, "--quiet"], { cwd: REPO });
    return { code: 0, out: stdout };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

async function filesOf(dir: string, prefix = ""): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = join(prefix, entry.name);
    if (entry.isDirectory()) {
      for (const [k, v] of await filesOf(dir, rel)) {
        out.set(k, v);
      }
    } else {
      out.set(rel, await readFile(join(dir, rel)));
    }
  }
  return out;
}

const LAYOUT = ["--tp", "2", "--pp", "2", "--ep", "2"];

describe("--worker I/N: N processes write one checkpoint", () => {
  it("three concurrent workers publish once, byte for byte the single-process checkpoint", async () => {
    const dir = await makeTempDir();
    const out = join(dir, "split");
    const results = await Promise.all([0, 1, 2].map((i) => worker(["hf2mcore", FIXTURE, out, ...LAYOUT, "--worker", `${i}/3`])));
    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    expect(results.filter((r) => r.out.includes(`published ${out}`))).toHaveLength(1);
    expect(existsSync(stagingDirOf(out))).toBe(false);
    const single = join(dir, "single");
    expect(runCli(["hf2mcore", FIXTURE, single, ...LAYOUT, "--quiet"]).code).toBe(0);
    const [a, b] = [await filesOf(out), await filesOf(single)];
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    for (const [name, bytes] of b) {
      expect([name, Buffer.compare(a.get(name) ?? Buffer.alloc(0), bytes)]).toEqual([name, 0]);
    }
  });

  it("nothing is published while a worker is missing; the missing one, run later, publishes", async () => {
    const out = join(await makeTempDir(), "split");
    for (const i of [0, 2]) {
      const r = await worker(["hf2mcore", FIXTURE, out, ...LAYOUT, "--worker", `${i}/3`]);
      expect(r.code).toBe(0);
      expect(r.out).toContain("the last worker to finish publishes");
    }
    expect(existsSync(out)).toBe(false);
    expect(runCli(["verify", FIXTURE, out]).code).toBe(2);
    const last = await worker(["hf2mcore", FIXTURE, out, ...LAYOUT, "--worker", "1/3"]);
    expect(last.out).toContain("3 of 3 workers done; checked every rank file is there and published");
    expect(runCli(["verify", FIXTURE, out]).code).toBe(0);
  });

  it("a publish lock of another host is respected and named; one whose local process died is taken over", async () => {
    const out = join(await makeTempDir(), "split");
    const lock = lockFileOf(`${out}.finalize`);
    expect((await worker(["hf2mcore", FIXTURE, out, ...LAYOUT, "--worker", "0/2"])).code).toBe(0);
    await writeFile(lock, "4242 node-17.cluster");
    const blocked = await worker(["hf2mcore", FIXTURE, out, ...LAYOUT, "--worker", "1/2"]);
    expect(blocked.code).toBe(0);
    expect(blocked.out).toContain("2 of 2 workers done; publishing:");
    expect(blocked.out).toContain(`a megatron-convert run on node-17.cluster (pid 4242) is writing this output; wait for it, or if it is gone remove ${lock}`);
    expect(existsSync(out)).toBe(false);
    await writeFile(lock, `2147483646 ${hostname()}`);
    const last = await worker(["hf2mcore", FIXTURE, out, ...LAYOUT, "--worker", "1/2"]);
    expect(last.out).toContain("published");
    expect(runCli(["verify", FIXTURE, out]).code).toBe(0);
    expect(existsSync(lock)).toBe(false);
  });

  it("what a killed earlier run left in the staging folder is cleared, not published", async () => {
    const out = join(await makeTempDir(), "split");
    const staging = stagingDirOf(out);
    await mkdir(join(staging, "release", "mp_rank_07_000"), { recursive: true });
    await writeFile(join(staging, "release", "mp_rank_07_000", "model_optim_rng.pt"), "stale");
    await writeFile(join(staging, ".worker-1-of-2.done"), "{}");
    const first = await worker(["hf2mcore", FIXTURE, out, ...LAYOUT, "--worker", "0/2"]);
    expect(first.out).toContain("1 of 2 workers done");
    expect((await worker(["hf2mcore", FIXTURE, out, ...LAYOUT, "--worker", "1/2"])).out).toContain("published");
    expect((await readdir(join(out, "release"))).sort()).toEqual(
      ["mp_rank_00_000_000", "mp_rank_00_000_001", "mp_rank_00_001_000", "mp_rank_00_001_001", "mp_rank_01_000_000", "mp_rank_01_000_001", "mp_rank_01_001_000", "mp_rank_01_001_001"],
    );
    expect(runCli(["verify", FIXTURE, out]).code).toBe(0);
  });

  it("workers started with other options or another count are refused; reshard splits the same way", async () => {
    const dir = await makeTempDir();
    const out = join(dir, "split");
    expect((await worker(["hf2mcore", FIXTURE, out, ...LAYOUT, "--worker", "0/2"])).code).toBe(0);
    const other = await worker(["hf2mcore", FIXTURE, out, "--tp", "4", "--ep", "2", "--worker", "1/2"]);
    expect(other.code).toBe(2);
    expect(other.out).toContain("[output.worker-mismatch]");
    expect(other.out).toContain("other options");
    const count = await worker(["hf2mcore", FIXTURE, out, ...LAYOUT, "--worker", "1/3"]);
    expect(count.out).toContain("staged for 2 workers");
    expect(existsSync(out)).toBe(false);
    const source = join(dir, "source");
    expect(runCli(["hf2mcore", FIXTURE, source, ...LAYOUT, "--quiet"]).code).toBe(0);
    const resharded = join(dir, "resharded");
    const reshards = await Promise.all([0, 1].map((i) => worker(["reshard", source, resharded, "--tp", "4", "--ep", "4", "--worker", `${i}/2`])));
    expect(reshards.map((r) => r.code)).toEqual([0, 0]);
    expect(runCli(["verify", FIXTURE, resharded]).code).toBe(0);
  });
});
