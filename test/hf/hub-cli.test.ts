import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FIXTURE } from "../support/run-cli.js";
import { makeTempDir } from "../support/tmpdir.js";
import { headerBytes, hubEnv, hubWithCache, REPO_ID, runCliAsync, SHARDS, tinyRepo } from "./hub-support.js";

// These run bin/megatron-convert.js, which runs dist/: run `npm run build` first (as .ci/run does).
describe("the command line with Hub repo ids", () => {
  it("plan org/name --json prints what plan <folder> --json prints, reading only shard headers", async () => {
    const { server, cacheDir } = await hubWithCache();
    const env = hubEnv(server, cacheDir);
    const [remote, local] = await Promise.all([
      runCliAsync(["plan", REPO_ID, "--tp", "2", "--ep", "4", "--json"], env),
      runCliAsync(["plan", FIXTURE, "--tp", "2", "--ep", "4", "--json"], env),
    ]);
    expect(remote.stderr).toBe("");
    expect(remote.code).toBe(0);
    expect(JSON.parse(remote.stdout)).toEqual(JSON.parse(local.stdout));
    for (const shard of SHARDS) {
      expect(server.bytesServed(REPO_ID, shard)).toBe(1 + (await headerBytes(join(FIXTURE, shard))));
    }
  });

  it("hf2mcore org/name downloads with progress lines, verify org/name reuses the cache, mcore2hf --hf-config org/name copies the tokenizer", async () => {
    const { server, cacheDir } = await hubWithCache();
    const env = hubEnv(server, cacheDir);
    const dir = await makeTempDir();
    const convert = await runCliAsync(["hf2mcore", REPO_ID, join(dir, "mcore"), "--tp", "2", "--ep", "2"], env);
    expect(convert.stderr).not.toContain("error");
    expect(convert.code).toBe(0);
    for (const shard of SHARDS) {
      expect(convert.stderr).toMatch(new RegExp(`\\[\\d/\\d\\] downloaded ${shard.replace(/\./g, "\\.")} \\(`));
    }
    const fetched = server.log.filter((r) => r.kind === "blob" || r.kind === "resolve").length;

    const verify = await runCliAsync(["verify", REPO_ID, join(dir, "mcore")], env);
    expect(verify.stdout).toContain("verify exact: OK");
    expect(verify.code).toBe(0);
    expect(server.log.filter((r) => r.kind === "blob" || r.kind === "resolve").length).toBe(fetched);

    const back = await runCliAsync(["mcore2hf", join(dir, "mcore"), join(dir, "hf"), "--hf-config", REPO_ID], env);
    expect(back.code).toBe(0);
    expect(await readdir(join(dir, "hf"))).toEqual(expect.arrayContaining(["config.json", "tokenizer.json", "tokenizer_config.json"]));
    const roundTrip = await runCliAsync(["verify", FIXTURE, join(dir, "hf")], env);
    expect(roundTrip.stdout).toContain("OK");
  });

  it("a gated repo exits 2 naming HF_TOKEN; with HF_TOKEN set the same command works", async () => {
    const { server, cacheDir } = await hubWithCache([tinyRepo({ gatedToken: "hf_granted" })]);
    const denied = await runCliAsync(["plan", REPO_ID], hubEnv(server, cacheDir));
    expect(denied.code).toBe(2);
    expect(denied.stderr).toContain("[hub.unauthorized]");
    expect(denied.stderr).toContain("set HF_TOKEN");
    const granted = await runCliAsync(["plan", REPO_ID], hubEnv(server, cacheDir, "hf_granted"));
    expect(granted.stderr).toBe("");
    expect(granted.code).toBe(0);
    expect(granted.stdout).toContain("mp_rank_00");
  });

  it("a missing repo exits 2 with hub.repo-not-found", async () => {
    const { server, cacheDir } = await hubWithCache();
    const r = await runCliAsync(["hf2mcore", "acme/nope", join(await makeTempDir(), "out")], hubEnv(server, cacheDir));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("[hub.repo-not-found]");
  });
});
