import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { writeBigModel } from "../support/big-model.js";
import { FIXTURE, runCli } from "../support/run-cli.js";
import { makeTempDir } from "../support/tmpdir.js";
import { REPO } from "../support/tiny-model.js";

async function treeHash(dir: string): Promise<string> {
  const hash = createHash("sha256");
  for (const name of (await readdir(dir)).sort()) {
    hash.update(name);
    hash.update(await readFile(join(dir, name)));
  }
  return hash.digest("hex");
}

/**
 * Starts a conversion, sends `signal` once the first rank file is done, returns how it ended.
 * `nodeArgs` go before the CLI (a preload).
 */
function interrupted(
  hf: string,
  out: string,
  signal: NodeJS.Signals,
  { jobs = 1, nodeArgs = [] }: { jobs?: number; nodeArgs?: readonly string[] } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const args = [...nodeArgs, join(REPO, "bin", "megatron-convert.js"), "hf2mcore", hf, out, "--tp", "4", "--ep", "8", "--jobs", String(jobs)];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    let sent = false;
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (!sent && stderr.includes("[1/32]")) {
        sent = true;
        child.kill(signal);
      }
    });
    child.on("exit", (code, sig) => resolve({ code, signal: sig, stderr }));
  });
}

const leftovers = async (dir: string) => (await readdir(dir)).filter((n) => n !== "hf");

describe("interruptions leave nothing that looks like a checkpoint, and a rerun succeeds", () => {
  for (const [signal, exit] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    it(`${signal}: exit ${exit}, one line, staging and lock removed, source untouched`, async () => {
      const dir = await makeTempDir();
      const hf = await writeBigModel(join(dir, "hf"));
      const before = await treeHash(hf);
      const out = join(dir, "out");
      const r = await interrupted(hf, out, signal);
      expect(r.code, r.stderr).toBe(exit);
      expect(r.stderr).toContain(`interrupted by ${signal}; nothing was left in the output folder`);
      expect(await leftovers(dir)).toEqual([]);
      expect(await treeHash(hf)).toBe(before);
    });
  }

  it("SIGINT while worker threads write rank files: exit 130, and no thread leaves a file behind", async () => {
    const dir = await makeTempDir();
    const hf = await writeBigModel(join(dir, "hf"));
    // a machine of 8 CPUs, as the CLI sees it: rank files are written in threads by default there
    const preload = join(await makeTempDir(), "eight-cpus.mjs");
    await writeFile(
      preload,
      `import os from "node:os";
import { syncBuiltinESMExports } from "node:module";
os.availableParallelism = () => 8;
syncBuiltinESMExports();
`,
    );
    const nodeArgs = ["--import", pathToFileURL(preload).href];
    const whole = spawnSync(process.execPath, [...nodeArgs, join(REPO, "bin", "megatron-convert.js"), "hf2mcore", hf, join(dir, "whole"), "--tp", "4", "--ep", "8", "--jobs", "4", "--json"], {
      encoding: "utf8",
    });
    expect(whole.status, whole.stderr).toBe(0);
    expect((JSON.parse(whole.stdout) as { threads: number }).threads).toBe(4);
    await rm(join(dir, "whole"), { recursive: true });
    const r = await interrupted(hf, join(dir, "out"), "SIGINT", { jobs: 4, nodeArgs });
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain("interrupted by SIGINT; nothing was left in the output folder");
    expect(r.stderr).not.toContain("thread failed");
    expect(await leftovers(dir)).toEqual([]);
    // files that threads might still have been creating would show up late
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await leftovers(dir)).toEqual([]);
  });

  it("SIGKILL: the stale staging folder and lock are cleaned by the rerun, which verifies", async () => {
    const dir = await makeTempDir();
    const hf = await writeBigModel(join(dir, "hf"));
    const before = await treeHash(hf);
    const out = join(dir, "out");
    const r = await interrupted(hf, out, "SIGKILL");
    expect(r.signal).toBe("SIGKILL");
    expect(existsSync(out)).toBe(false);
    expect(existsSync(join(out, "latest_checkpointed_iteration.txt"))).toBe(false);
    expect((await leftovers(dir)).sort()).toEqual([".out.megatron-convert-lock", ".out.megatron-convert-partial"]);
    const again = runCli(["hf2mcore", hf, out, "--tp", "4", "--ep", "8", "--quiet"]);
    expect(again.code, again.stderr).toBe(0);
    expect(await leftovers(dir)).toEqual(["out"]);
    expect(runCli(["verify", hf, out]).code).toBe(0);
    expect(await treeHash(hf)).toBe(before);
  });
});

describe("a full disk", () => {
  it("ENOSPC gives a clear error, no output, and a rerun with room succeeds", async () => {
    const dir = await makeTempDir();
    const small = join(dir, "small");
    await mkdir(small);
    const mount = spawnSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", small], { encoding: "utf8" });
    expect(mount.status, `mounting a small tmpfs needs root: ${mount.stderr}`).toBe(0);
    try {
      const before = await treeHash(FIXTURE);
      const r = runCli(["hf2mcore", FIXTURE, join(small, "out"), "--tp", "2", "--ep", "2", "--quiet"]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("ENOSPC");
      expect(r.stderr).not.toContain("internal error");
      expect(await readdir(small)).toEqual([]);
      expect(await treeHash(FIXTURE)).toBe(before);
    } finally {
      spawnSync("umount", [small]);
    }
    const again = runCli(["hf2mcore", FIXTURE, join(small, "out"), "--tp", "2", "--ep", "2", "--quiet"]);
    expect(again.code, again.stderr).toBe(0);
  });
});

describe("--force and --check-finite", () => {
  it("--force replaces our own checkpoint but never a folder holding other files", async () => {
    const dir = await makeTempDir();
    const out = join(dir, "out");
    expect(runCli(["hf2mcore", FIXTURE, out, "--quiet"]).code).toBe(0);
    expect(runCli(["hf2mcore", FIXTURE, out, "--quiet"]).code).toBe(2);
    const forced = runCli(["hf2mcore", FIXTURE, out, "--tp", "2", "--force", "--quiet"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect((await readdir(join(out, "release"))).sort()).toEqual(["mp_rank_00", "mp_rank_01"]);
    await import("node:fs/promises").then((fs) => fs.writeFile(join(out, "my-notes.txt"), "keep me"));
    const refused = runCli(["hf2mcore", FIXTURE, out, "--force", "--quiet"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("my-notes.txt");
    expect(await readFile(join(out, "my-notes.txt"), "utf8")).toBe("keep me");
  });

  it("--check-finite names the tensors holding NaN or Inf and writes nothing", async () => {
    const dir = await makeTempDir();
    const hf = join(dir, "hf");
    await import("node:fs/promises").then((fs) => fs.cp(FIXTURE, hf, { recursive: true }));
    const shard = join(hf, "model-00002-of-00002.safetensors");
    const bytes = await readFile(shard);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString()) as Record<string, { data_offsets: number[] }>;
    const at = 8 + n + (header["model.norm.weight"]?.data_offsets[0] ?? 0);
    bytes.writeUInt16LE(0x7fc0, at + 2);
    await import("node:fs/promises").then((fs) => fs.writeFile(shard, bytes));
    expect(runCli(["hf2mcore", hf, join(dir, "plain"), "--quiet"]).code).toBe(0);
    const r = runCli(["hf2mcore", hf, join(dir, "out"), "--check-finite", "--quiet"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("[tensor.non-finite]");
    expect(r.stderr).toContain("decoder.final_layernorm.weight: 1 non-finite value(s)");
    expect(existsSync(join(dir, "out"))).toBe(false);
  });
});
