import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { hf2mcore } from "../../src/commands/convert.js";
import { openHfModel } from "../../src/commands/hf-input.js";
import type { HubProgressEvent } from "../../src/hf/download.js";
import { verifyExact } from "../../src/commands/verify.js";
import { FIXTURE } from "../support/run-cli.js";
import { targetOf } from "../support/targets.js";
import { makeTempDir } from "../support/tmpdir.js";
import { hubWithCache, REPO_ID, SHARDS, stubHubEnv, TOKENIZER } from "./hub-support.js";

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("hf2mcore from a Hub repo id", () => {
  it("downloads config, index, shards and tokenizer files into the HF cache, converts, and the result verifies", async () => {
    const { server, cacheDir } = await hubWithCache();
    stubHubEnv(server, cacheDir);
    const out = join(await makeTempDir(), "mcore");
    await hf2mcore({ ...targetOf({ tp: 2, ep: 2 }), hf: REPO_ID, out, jobs: 2 });

    const storage = join(cacheDir, "models--acme--tiny-mixtral");
    const commit = (await readFile(join(storage, "refs", "main"), "utf8")).trim();
    expect(commit).toMatch(/^[0-9a-f]{40}$/);
    const snapshot = join(storage, "snapshots", commit);
    expect((await readdir(snapshot)).sort()).toEqual(
      ["config.json", "model.safetensors.index.json", ...SHARDS, ...Object.keys(TOKENIZER)].sort(),
    );
    for (const name of SHARDS) {
      expect((await lstat(join(snapshot, name))).isSymbolicLink()).toBe(true);
      expect(await readlink(join(snapshot, name))).toMatch(/^\.\.\/\.\.\/blobs\/[0-9a-f]{64}$/);
      expect(Buffer.compare(await readFile(join(snapshot, name)), await readFile(join(FIXTURE, name)))).toBe(0);
    }
    expect((await readdir(join(storage, "blobs"))).filter((n) => n.endsWith(".incomplete"))).toEqual([]);
    // Only what a conversion reads was fetched.
    expect(server.fileRequests(REPO_ID, "README.md")).toEqual([]);
    expect(server.fileRequests(REPO_ID, "pytorch_model.bin")).toEqual([]);

    const fromSnapshot = await verifyExact({ hf: snapshot, mcore: out, jobs: 2 });
    expect(fromSnapshot.differences).toEqual([]);
    expect(fromSnapshot.ok).toBe(true);
    expect(fromSnapshot.tensorsChecked).toBeGreaterThan(0);
    const fromRepoId = await verifyExact({ hf: REPO_ID, mcore: out, jobs: 2 });
    expect(fromRepoId.ok).toBe(true);
  });

  it("reuses the cache: a second conversion fetches no file, only the commit and the file list", async () => {
    const { server, cacheDir } = await hubWithCache();
    stubHubEnv(server, cacheDir);
    const dir = await makeTempDir();
    await hf2mcore({ ...targetOf({ tp: 2 }), hf: REPO_ID, out: join(dir, "a"), jobs: 2 });
    const before = server.log.length;
    await hf2mcore({ ...targetOf({ ep: 4 }), hf: REPO_ID, out: join(dir, "b"), jobs: 2 });
    const second = server.log.slice(before);
    expect(second.filter((r) => r.kind === "resolve" || r.kind === "blob")).toEqual([]);
    expect(second.map((r) => r.kind).sort()).toEqual(["model-info", "paths-info"]);
    expect((await verifyExact({ hf: FIXTURE, mcore: join(dir, "b"), jobs: 2 })).ok).toBe(true);
  });

  it("reports progress per file and in total", async () => {
    const { hub } = await hubWithCache();
    const events: HubProgressEvent[] = [];
    const model = await openHfModel(REPO_ID, { hub, onDownload: (e) => events.push(e) });
    await model.close();
    expect(model.hub?.repo).toBe(REPO_ID);
    const plans = events.filter((e) => e.kind === "hub-plan");
    const done = events.filter((e) => e.kind === "hub-file-done").map((e) => e.path);
    expect(done.sort()).toEqual(["config.json", "model.safetensors.index.json", ...SHARDS, ...Object.keys(TOKENIZER)].sort());
    const total = plans.reduce((s, e) => s + (e.kind === "hub-plan" ? e.totalBytes : 0), 0);
    const bytes = events.reduce((s, e) => s + (e.kind === "hub-bytes" ? e.bytes : 0), 0);
    expect(bytes).toBe(total);
    for (const shard of SHARDS) {
      const size = (await readFile(join(FIXTURE, shard))).byteLength;
      expect(events.filter((e) => e.kind === "hub-bytes" && e.path === shard).reduce((s, e) => s + (e.kind === "hub-bytes" ? e.bytes : 0), 0)).toBe(size);
      expect(events).toContainEqual({ kind: "hub-file-start", path: shard, size, resumedFrom: 0 });
    }
  });
});
