import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { stopAllWorkerThreads, WorkerPool, type WorkerPoolOptions } from "../../src/engine/worker-pool.js";
import { makeTempDir } from "../support/tmpdir.js";
import { REPO } from "../support/tiny-model.js";

/**
 * stopAllWorkerThreads, in a file of its own: it stops every pool made after it too (the process
 * is about to exit), so no other pool of this test process may run after it.
 */
const OPTIONS: WorkerPoolOptions<string> = { name: "test", doing: (job) => `doing ${job}`, queuedPerThread: 2 };

/** A worker whose every job writes files into the folder it names, one every 2 ms, without end. */
async function endlessWriter(): Promise<string> {
  const path = join(await makeTempDir(), "endless-writer.mjs");
  const serve = pathToFileURL(join(REPO, "dist", "engine", "worker-pool.js")).href;
  await writeFile(
    path,
    `import { parentPort } from "node:worker_threads";
import { writeFileSync } from "node:fs";
import { serveJobs } from ${JSON.stringify(serve)};
serveJobs(parentPort, async () => ({ context: {}, close: async () => undefined }), async (job) => {
  for (let i = 0; ; i++) {
    writeFileSync(job + "/" + i, "x");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
});
`,
  );
  return path;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(() => resolve("pending"), ms));

describe("stopAllWorkerThreads", () => {
  it("ends threads in the middle of a job, which then neither creates files nor fails, and stops pools made after it at once", async () => {
    const script = await endlessWriter();
    const dir = await makeTempDir();
    const pool = new WorkerPool<string, never>(script, {}, 2, OPTIONS);
    const runs = [pool.run(dir), pool.run(dir)].map((run) => run.then(() => "answered", () => "failed"));
    while ((await readdir(dir)).length < 20) {
      await sleep(5);
    }
    stopAllWorkerThreads();
    await sleep(100);
    const files = (await readdir(dir)).length;
    await sleep(200);
    expect((await readdir(dir)).length).toBe(files);
    expect(await Promise.race([...runs, sleep(0)])).toBe("pending");
    // a pool made after the stop (a write that was about to start) never writes
    const late = await makeTempDir();
    const after = new WorkerPool<string, never>(script, {}, 1, OPTIONS);
    const lateRun = after.run(late).then(() => "answered", () => "failed");
    await sleep(300);
    expect(await readdir(late)).toEqual([]);
    expect(await Promise.race([lateRun, sleep(0)])).toBe("pending");
  });
});
