import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { buildPlan } from "../../src/commands/build-plan.js";
import { hf2mcore } from "../../src/commands/convert.js";
import { openHfModel } from "../../src/commands/hf-input.js";
import { FIXTURE } from "../support/run-cli.js";
import { targetOf } from "../support/targets.js";
import { headerBytes, hubWithCache, REPO_ID, SHARDS, stubHubEnv } from "./hub-support.js";

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("plan from a Hub repo id", () => {
  it("reads only the safetensors headers with Range requests and gives the same plan as the local folder", async () => {
    const { server, cacheDir, hub } = await hubWithCache();
    const target = targetOf({ tp: 2, pp: 2, ep: 2 });
    const remote = await openHfModel(REPO_ID, { hub, remote: true });
    const local = await openHfModel(FIXTURE);
    try {
      const [a, b] = [await buildPlan(remote, target), await buildPlan(local, target)];
      expect(a.plan).toEqual(b.plan);
      expect(a.flags).toEqual(b.flags);
    } finally {
      await Promise.all([remote.close(), local.close()]);
    }
    for (const shard of SHARDS) {
      const header = await headerBytes(join(FIXTURE, shard));
      const requests = server.fileRequests(REPO_ID, shard);
      // Every byte request is ranged and inside the header: a 1-byte probe, the 8-byte length, the JSON.
      const blobs = requests.filter((r) => r.kind === "blob");
      expect(blobs.map((r) => r.range)).toEqual(["bytes=0-0", "bytes=0-7", `bytes=8-${header - 1}`]);
      expect(server.bytesServed(REPO_ID, shard)).toBe(1 + header);
      expect(server.bytesServed(REPO_ID, shard)).toBeLessThan((await readFile(join(FIXTURE, shard))).byteLength / 10);
    }
    // The cache holds the config and the index, and no shard.
    const snapshots = join(cacheDir, "models--acme--tiny-mixtral", "snapshots");
    const [commit] = await readdir(snapshots);
    expect((await readdir(join(snapshots, commit ?? ""))).sort()).toEqual(["config.json", "model.safetensors.index.json"]);
  });

  it("hf2mcore --dry-run reads headers only, like plan", async () => {
    const { server, cacheDir } = await hubWithCache();
    stubHubEnv(server, cacheDir);
    const result = await hf2mcore({ ...targetOf({ tp: 2 }), hf: REPO_ID, out: "/nonexistent/out", jobs: 1, dryRun: true });
    expect(result.written).toBe(false);
    expect(result.built.plan.files.length).toBe(2);
    for (const shard of SHARDS) {
      expect(server.bytesServed(REPO_ID, shard)).toBe(1 + (await headerBytes(join(FIXTURE, shard))));
    }
  });
});
