import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
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

const FOUR_MIB = 4 << 20;

describe("evictTrees (bench --cache cold)", () => {
  it("drops every file under the folders from the page cache, just written (dirty) or just read (clean)", async () => {
    const dir = await makeTempDir("mc-cache-");
    const written = join(dir, "a", "written.bin");
    const read = join(dir, "b", "c", "read.bin");
    await mkdir(join(dir, "a"));
    await mkdir(join(dir, "b", "c"), { recursive: true });
    await writeFile(read, randomBytes(FOUR_MIB));
    expect(spawnSync("sync", ["-f", dir]).status).toBe(0);
    await readFile(read); // clean pages, cached
    await writeFile(written, randomBytes(FOUR_MIB)); // dirty pages: only a sync makes them droppable
    expect([resident(written), resident(read)]).toEqual([FOUR_MIB, FOUR_MIB]);

    expect(await evictTrees([join(dir, "a"), join(dir, "b")])).toBe(2);
    expect([resident(written), resident(read)]).toEqual([0, 0]);

    await readFile(read); // and the next read fills it again
    expect(resident(read)).toBe(FOUR_MIB);
  });

  it("refuses a folder on tmpfs, whose files cannot leave memory (a cold run there would be warm)", async () => {
    const dir = await mkdtemp("/dev/shm/mc-cache-");
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, "x.bin"), randomBytes(FOUR_MIB));
    const error = await evictTrees([dir]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PageCacheError);
    expect((error as Error).message).toBe(`--cache cold: cannot drop ${dir} from the page cache: it is on tmpfs, whose files live in memory; give --dir a folder on a disk`);
    expect(resident(join(dir, "x.bin"))).toBe(FOUR_MIB);
  });

  it("says which tool is missing when it cannot evict", async () => {
    const dir = await makeTempDir("mc-cache-");
    await writeFile(join(dir, "x.bin"), "x");
    const path = process.env["PATH"];
    onTestFinished(() => {
      if (path === undefined) {
        delete process.env["PATH"];
      } else {
        process.env["PATH"] = path;
      }
    });
    process.env["PATH"] = join(dir, "no-tools-here");
    const error = await evictTrees([dir]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PageCacheError);
    expect((error as Error).message).toMatch(/cannot drop .* sync: .*ENOENT; it needs `sync -f` and GNU dd with iflag=nocache/);
  });
});
