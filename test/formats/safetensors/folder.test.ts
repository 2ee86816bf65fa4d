import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConvertError } from "../../../src/errors.js";
import type { ByteSource } from "../../../src/formats/io/byte-source.js";
import { FileSource } from "../../../src/formats/io/file-source.js";
import type { SafetensorsError } from "../../../src/formats/safetensors/errors.js";
import { openSafetensorsFolder } from "../../../src/formats/safetensors/folder.js";
import { makeTempDir } from "../../support/tmpdir.js";
import { craftSafetensors, entry, TWO_TENSOR_FILE, writeBytes } from "../../support/safetensors-builders.js";

/** A valid file holding one U8[1] tensor per name. */
function smallFile(names: readonly string[]): Uint8Array {
  const header = Object.fromEntries(names.map((name, i) => [name, entry("U8", [1], i, i + 1)]));
  return craftSafetensors({ header: { __metadata__: { format: "pt" }, ...header }, data: names.length });
}

function indexJson(weightMap: Record<string, string>): string {
  return JSON.stringify({ metadata: { total_size: Object.keys(weightMap).length }, weight_map: weightMap }, null, 2);
}

/** An openSource that records what it opened and closed. */
function trackingOpener(): { open: (path: string) => Promise<ByteSource>; opened: string[]; closed: string[] } {
  const opened: string[] = [];
  const closed: string[] = [];
  const open = async (path: string): Promise<ByteSource> => {
    const inner = await FileSource.open(path);
    opened.push(path);
    return {
      name: inner.name,
      size: inner.size,
      read: (offset, length) => inner.read(offset, length),
      close: async () => {
        closed.push(path);
        await inner.close();
      },
    };
  };
  return { open, opened, closed };
}

async function errorOf(promise: Promise<unknown>, code: string, ...mentions: string[]): Promise<SafetensorsError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConvertError);
  const e = error as SafetensorsError;
  expect(e.code).toBe(code);
  for (const m of mentions) {
    expect(e.message).toContain(m);
  }
  return e;
}

describe("openSafetensorsFolder: which files", () => {
  it("opens a single file given by path", async () => {
    const path = await writeBytes(await makeTempDir(), "weights.safetensors", TWO_TENSOR_FILE);
    const checkpoint = await openSafetensorsFolder(path);
    expect(checkpoint.location).toBe(path);
    expect([...checkpoint.tensors.keys()]).toEqual(["w", "n"]);
    await checkpoint.close();
  });

  it("prefers model.safetensors over other *.safetensors files", async () => {
    const dir = await makeTempDir();
    await writeBytes(dir, "model.safetensors", smallFile(["a"]));
    await writeBytes(dir, "other.safetensors", smallFile(["b"]));
    const checkpoint = await openSafetensorsFolder(dir);
    expect(checkpoint.files.map((f) => f.source.name)).toEqual([join(dir, "model.safetensors")]);
    await checkpoint.close();
  });

  it("otherwise opens exactly the *.safetensors files, sorted, following symlinks, skipping folders", async () => {
    const dir = await makeTempDir();
    const blobs = await makeTempDir();
    await writeBytes(dir, "b.safetensors", smallFile(["b1", "b2"]));
    await writeBytes(dir, "a.safetensors", smallFile(["a1"]));
    await symlink(await writeBytes(blobs, "blob", smallFile(["c1"])), join(dir, "c.safetensors"));
    await mkdir(join(dir, "d.safetensors"));
    await writeFile(join(dir, "notes.txt"), "x");
    const checkpoint = await openSafetensorsFolder(dir);
    expect(checkpoint.location).toBe(dir);
    expect(checkpoint.files.map((f) => f.source.name)).toEqual(["a", "b", "c"].map((n) => join(dir, `${n}.safetensors`)));
    expect([...checkpoint.tensors.keys()]).toEqual(["a1", "b1", "b2", "c1"]);
    const b2 = checkpoint.tensors.get("b2");
    expect(b2 === undefined ? undefined : checkpoint.sourceOf(b2).name).toBe(join(dir, "b.safetensors"));
    await checkpoint.close();
  });

  it("safetensors.no-files: a folder without safetensors", async () => {
    const dir = await makeTempDir();
    await writeFile(join(dir, "pytorch_model.bin"), "x");
    await errorOf(openSafetensorsFolder(dir), "safetensors.no-files", dir);
  });

  it("io.access: a path that does not exist", async () => {
    const dir = join(await makeTempDir(), "nope");
    await errorOf(openSafetensorsFolder(dir), "io.access", dir);
  });

  it("safetensors.duplicate-tensor: the same name in two files names both; every source is closed", async () => {
    const dir = await makeTempDir();
    await writeBytes(dir, "a.safetensors", smallFile(["x", "w"]));
    await writeBytes(dir, "b.safetensors", smallFile(["w"]));
    const tracker = trackingOpener();
    await errorOf(openSafetensorsFolder(dir, { openSource: tracker.open }), "safetensors.duplicate-tensor", '"w"', "a.safetensors", "b.safetensors");
    expect(tracker.closed.sort()).toEqual(tracker.opened.sort());
    expect(tracker.opened.length).toBe(2);
  });

  it("a broken file among good ones closes all sources and names the broken file", async () => {
    const dir = await makeTempDir();
    await writeBytes(dir, "a.safetensors", smallFile(["a"]));
    await writeBytes(dir, "b.safetensors", smallFile(["b"]).subarray(0, 20));
    const tracker = trackingOpener();
    await errorOf(openSafetensorsFolder(dir, { openSource: tracker.open }), "safetensors.header-past-end", join(dir, "b.safetensors"));
    expect(tracker.closed.sort()).toEqual(tracker.opened.sort());
  });
});

describe("openSafetensorsFolder: with model.safetensors.index.json", () => {
  async function indexedFolder(weightMap: Record<string, string>, shards: Record<string, readonly string[]>): Promise<string> {
    const dir = await makeTempDir();
    await writeFile(join(dir, "model.safetensors.index.json"), indexJson(weightMap));
    for (const [shard, names] of Object.entries(shards)) {
      await writeBytes(dir, shard, smallFile(names));
    }
    return dir;
  }

  it("opens the shards the index names (and only those) through the injected openSource", async () => {
    const dir = await indexedFolder(
      { a: "model-00001-of-00002.safetensors", b: "model-00002-of-00002.safetensors", c: "model-00001-of-00002.safetensors" },
      { "model-00001-of-00002.safetensors": ["a", "c"], "model-00002-of-00002.safetensors": ["b"], "stray.safetensors": ["z"] },
    );
    const tracker = trackingOpener();
    const checkpoint = await openSafetensorsFolder(dir, { openSource: tracker.open });
    expect(tracker.opened.sort()).toEqual(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"].map((n) => join(dir, n)));
    expect([...checkpoint.tensors.keys()]).toEqual(["a", "c", "b"]);
    await checkpoint.close();
    expect(tracker.closed.sort()).toEqual(tracker.opened.sort());
  });

  it("safetensors.index-missing-shard: names the index and the shard", async () => {
    const dir = await indexedFolder({ a: "model-00001-of-00002.safetensors", b: "model-00002-of-00002.safetensors" }, { "model-00001-of-00002.safetensors": ["a"] });
    await errorOf(openSafetensorsFolder(dir), "safetensors.index-missing-shard", "model.safetensors.index.json", "model-00002-of-00002.safetensors");
  });

  it("safetensors.tensor-not-found: the index names a tensor its shard lacks", async () => {
    const dir = await indexedFolder({ a: "s1.safetensors", ghost: "s1.safetensors" }, { "s1.safetensors": ["a"] });
    const tracker = trackingOpener();
    await errorOf(openSafetensorsFolder(dir, { openSource: tracker.open }), "safetensors.tensor-not-found", "model.safetensors.index.json", '"ghost"', "s1.safetensors");
    expect(tracker.closed).toEqual(tracker.opened);
  });

  it("safetensors.index-incomplete: a shard holds a tensor the index does not map to it", async () => {
    const dir = await indexedFolder({ a: "s1.safetensors" }, { "s1.safetensors": ["a", "extra"] });
    await errorOf(openSafetensorsFolder(dir), "safetensors.index-incomplete", "model.safetensors.index.json", '"extra"', "s1.safetensors");
  });

  it("safetensors.index-bad: bad JSON, no weight_map, paths outside the folder", async () => {
    for (const text of ["{", "[]", '{"metadata":{}}', '{"weight_map":{"a":"../x.safetensors"}}', '{"weight_map":{"a":3}}', '{"weight_map":{}}']) {
      const dir = await makeTempDir();
      await writeFile(join(dir, "model.safetensors.index.json"), text);
      await errorOf(openSafetensorsFolder(dir), "safetensors.index-bad", join(dir, "model.safetensors.index.json"));
    }
  });
});
