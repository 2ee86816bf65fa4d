import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { evictTrees, PageCacheError } from "../../src/bench/page-cache.js";
import { makeTempDir } from "../support/tmpdir.js";

/** Bytes of `path` in the page cache, as util-linux's fincore (mincore(2)) counts them. */
function resident(path: string): number {
  const result = spawnSync("fincore", ["--bytes", "--noheadings", "--raw", "--output", "RES", path], { encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(`fincore ${path}: ${result.error?.message ?? result.stderr}`);
  }
  return Number(result.stdout.trim());
}

describe("evictTrees (bench --cache cold)", () => {
  it("drops every file under the folders from the page cache, just written or just read", async () => {
    const dir = await makeTempDir("mc-cache-");
    const written = join(dir, "a", "written.bin");
    const read = join(dir, "b", "c", "read.bin");
    await mkdir(join(dir, "a"));
    await mkdir(join(dir, "b", "c"), { recursive: true });
    await writeFile(written, randomBytes(4 << 20)); // dirty pages: only sync makes them droppable
    await writeFile(read, randomBytes(4 << 20));
    await readFile(read);
    expect(resident(written)).toBe(4 << 20);
    expect(resident(read)).toBe(4 << 20);

    expect(await evictTrees([join(dir, "a"), join(dir, "b")])).toBe(2);
    expect([resident(written), resident(read)]).toEqual([0, 0]);

    await readFile(read); // and the next read fills it again
    expect(resident(read)).toBe(4 << 20);
  });

  it("says which tool is missing when it cannot evict", async () => {
    const dir = await makeTempDir("mc-cache-");
    await writeFile(join(dir, "x.bin"), "x");
    const path = process.env["PATH"];
    onTestFinished(() => {
      process.env["PATH"] = path;
    });
    process.env["PATH"] = join(dir, "no-tools-here");
    const error = await evictTrees([dir]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PageCacheError);
    expect((error as Error).message).toMatch(/sync: .*ENOENT.*--cache cold needs `sync` and GNU dd/);
  });
});
