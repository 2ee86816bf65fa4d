import { truncate } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { hf2mcore } from "../../src/commands/convert.js";
import { openMcoreModel } from "../../src/commands/mcore-input.js";
import { FileSource } from "../../src/formats/io/file-source.js";
import { FIXTURE } from "../support/run-cli.js";
import { targetOf } from "../support/targets.js";
import { makeTempDir } from "../support/tmpdir.js";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("opening a Megatron checkpoint", () => {
  it("closes every rank file it opened when a later one cannot be read", async () => {
    const mcore = join(await makeTempDir(), "mcore");
    await hf2mcore({ ...targetOf({ tp: 2, ep: 2 }), hf: FIXTURE, out: mcore, jobs: 2 });
    const broken = join(mcore, "release", "mp_rank_01_001", "model_optim_rng.pt");
    await truncate(broken, 100);
    const opened = vi.spyOn(FileSource, "open");
    const closed = vi.spyOn(FileSource.prototype, "close");
    await expect(openMcoreModel(mcore, {})).rejects.toThrow(broken);
    const sources = await Promise.all(opened.mock.results.map((r) => r.value as Promise<FileSource>));
    expect(sources.length).toBe(4);
    expect(new Set(closed.mock.contexts)).toEqual(new Set(sources));
  });
});
