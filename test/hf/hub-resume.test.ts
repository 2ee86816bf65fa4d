import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { hf2mcore } from "../../src/commands/convert.js";
import { openHfModel } from "../../src/commands/hf-input.js";
import { verifyExact } from "../../src/commands/verify.js";
import { ConvertError } from "../../src/errors.js";
import type { HubProgressEvent } from "../../src/hf/download.js";
import { FIXTURE } from "../support/run-cli.js";
import { startHubServer } from "../support/hub-server.js";
import { targetOf } from "../support/targets.js";
import { makeTempDir } from "../support/tmpdir.js";
import { hubWithCache, REPO_ID, SHARDS, stubHubEnv, tinyRepo } from "./hub-support.js";

afterEach(() => {
  vi.unstubAllEnvs();
});

const SHARD = SHARDS[0];
const CUT = 100_000;

async function codeOf(promise: Promise<unknown>): Promise<{ code: string; message: string; hint: string | undefined }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConvertError);
  const e = error as ConvertError;
  return { code: e.code, message: e.message, hint: e.hint };
}

describe("interrupted downloads", () => {
  it("fail with a typed network error, keep the partial file, and resume from it with a Range request", async () => {
    const { server, cacheDir } = await hubWithCache();
    stubHubEnv(server, cacheDir);
    const sha = createHash("sha256").update(await readFile(join(FIXTURE, SHARD))).digest("hex");
    const size = (await stat(join(FIXTURE, SHARD))).size;
    const blobs = join(cacheDir, "models--acme--tiny-mixtral", "blobs");
    const out = join(await makeTempDir(), "mcore");

    server.dropOnce(REPO_ID, SHARD, CUT);
    const first = await codeOf(hf2mcore({ ...targetOf({ tp: 2, ep: 2 }), hf: REPO_ID, out, jobs: 2 }));
    expect(first.code).toBe("hub.network");
    expect(first.message).toContain(SHARD);
    expect(first.hint).toContain("rerun");
    expect(existsSync(out)).toBe(false);
    expect((await stat(join(blobs, `${sha}.incomplete`))).size).toBe(CUT);
    expect(existsSync(join(blobs, sha))).toBe(false);

    const before = server.log.length;
    const events: HubProgressEvent[] = [];
    const model = await openHfModel(REPO_ID, { onDownload: (e) => events.push(e) });
    await model.close();
    expect(events).toContainEqual({ kind: "hub-file-start", path: SHARD, size, resumedFrom: CUT });
    const again = server.log.slice(before).filter((r) => r.path === SHARD);
    // resolve probe (302), 1-byte probe of the blob, then only the missing bytes.
    expect(again.map((r) => [r.kind, r.range, r.bytes])).toEqual([
      ["resolve", "bytes=0-0", 0],
      ["blob", "bytes=0-0", 1],
      ["blob", `bytes=${CUT}-${size - 1}`, size - CUT],
    ]);
    expect((await readdir(blobs)).filter((n) => n.endsWith(".incomplete"))).toEqual([]);
    expect(Buffer.compare(await readFile(join(blobs, sha)), await readFile(join(FIXTURE, SHARD)))).toBe(0);

    await hf2mcore({ ...targetOf({ tp: 2, ep: 2 }), hf: REPO_ID, out, jobs: 2 });
    expect((await verifyExact({ hf: REPO_ID, mcore: out, jobs: 2 })).ok).toBe(true);
  });

  it("checks resumed bytes against the Hub's sha256: a corrupt partial file is removed and the rerun starts over", async () => {
    const { server, hub, cacheDir } = await hubWithCache();
    const bytes = await readFile(join(FIXTURE, SHARD));
    const sha = createHash("sha256").update(bytes).digest("hex");
    const blobs = join(cacheDir, "models--acme--tiny-mixtral", "blobs");
    await mkdir(blobs, { recursive: true });
    const corrupt = Buffer.from(bytes.subarray(0, CUT));
    corrupt.writeUInt8(corrupt.readUInt8(CUT - 1) ^ 0xff, CUT - 1);
    await writeFile(join(blobs, `${sha}.incomplete`), corrupt);

    const first = await codeOf(openHfModel(REPO_ID, { hub }));
    expect(first.code).toBe("hub.checksum");
    expect(first.message).toContain(SHARD);
    expect(existsSync(join(blobs, `${sha}.incomplete`))).toBe(false);
    const model = await openHfModel(REPO_ID, { hub });
    await model.close();
    expect(Buffer.compare(await readFile(join(blobs, sha)), bytes)).toBe(0);
    expect(server.bytesServed(REPO_ID, SHARD)).toBe(1 + (bytes.byteLength - CUT) + 1 + bytes.byteLength);
  });

  it("a Hub that cannot be reached is a network error that says the cache keeps what was downloaded", async () => {
    const server = await startHubServer([tinyRepo()]);
    const cacheDir = await makeTempDir();
    const url = server.url;
    await server.close();
    const error = await codeOf(openHfModel(REPO_ID, { hub: { hubUrl: url, cacheDir } }));
    expect(error.code).toBe("hub.network");
    expect(error.message).toContain(REPO_ID);
    expect(error.hint).toContain("stays in the cache");
  });
});
