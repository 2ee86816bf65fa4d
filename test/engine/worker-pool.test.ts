import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { ConvertError } from "../../src/errors.js";
import { WORKER_YOUNG_GENERATION_MB, WorkerPool, type PoolReply, type PoolRequest, type WorkerPoolOptions } from "../../src/engine/worker-pool.js";
import { makeTempDir } from "../support/tmpdir.js";
import { REPO } from "../support/tiny-model.js";

/**
 * The worker-thread pool on its own, with jobs that are plain values. Worker scripts are written
 * to a temp folder; those that serve jobs import serveJobs from the built dist/ (a worker cannot
 * load the TypeScript sources).
 */
const OPTIONS: WorkerPoolOptions<string> = { name: "test", doing: (job) => `doing ${job}`, queuedPerThread: 2 };

async function script(name: string, text: string): Promise<string> {
  const path = join(await makeTempDir(), name);
  await writeFile(path, text);
  return path;
}

/** A worker that serves jobs (strings) with `run` (JS source, given the job, the context `open` made and a way to send notes). */
async function servingScript(open: string, run: string, serveOptions = "{}"): Promise<string> {
  const serve = pathToFileURL(join(REPO, "dist", "engine", "worker-pool.js")).href;
  const errors = pathToFileURL(join(REPO, "dist", "errors.js")).href;
  return script(
    "serving-worker.mjs",
    `import { parentPort } from "node:worker_threads";
import { serveJobs } from ${JSON.stringify(serve)};
import { ConvertError } from ${JSON.stringify(errors)};
class JobError extends ConvertError { code = "test.job-failed"; }
serveJobs(parentPort, ${open}, ${run}, ${serveOptions});
`,
  );
}

describe("WorkerPool and serveJobs", () => {
  it("runs each thread's jobs one after another, in the order sent, with the context opened once", async () => {
    const path = await servingScript(
      "async () => ({ context: { opened: 0, running: 0, seen: [] }, close: async () => undefined })",
      `async (job, context) => {
  context.running++;
  const overlapping = context.running > 1;
  await new Promise((resolve) => setTimeout(resolve, 5));
  context.running--;
  context.seen.push(job);
  return { job, overlapping, seen: [...context.seen] };
}`,
    );
    const pool = new WorkerPool<string, { job: string; overlapping: boolean; seen: string[] }>(path, {}, 1, { ...OPTIONS, queuedPerThread: 3 });
    try {
      expect(pool.parallel).toBe(3);
      const results = await Promise.all(["a", "b", "c", "d", "e"].map((job) => pool.run(job)));
      expect(results.map((r) => r.job)).toEqual(["a", "b", "c", "d", "e"]);
      expect(results.some((r) => r.overlapping)).toBe(false);
      expect(results.at(-1)?.seen).toEqual(["a", "b", "c", "d", "e"]);
    } finally {
      await pool.close();
    }
  });

  it("runs jobs as they come when the context serves several at once, and passes their notes on before their results", async () => {
    const path = await servingScript(
      "async () => ({ context: { running: 0, most: 0 }, close: async () => undefined })",
      `async (job, context, note) => {
  context.running++;
  context.most = Math.max(context.most, context.running);
  note(job + " started");
  await new Promise((resolve) => setTimeout(resolve, 20));
  note(job + " ending");
  context.running--;
  return { job, most: context.most };
}`,
      "{ oneAtATime: false }",
    );
    const notes: string[] = [];
    const seen: string[] = [];
    const pool = new WorkerPool<string, { job: string; most: number }>(path, {}, 1, { ...OPTIONS, queuedPerThread: 3, onNote: (n) => notes.push(n as string) });
    try {
      const results = await Promise.all(
        ["a", "b", "c"].map(async (job) => {
          const result = await pool.run(job);
          seen.push(...notes.filter((n) => n.startsWith(job)));
          return result;
        }),
      );
      expect(results.map((r) => r.job)).toEqual(["a", "b", "c"]);
      expect(Math.max(...results.map((r) => r.most))).toBe(3);
      expect(notes.filter((n) => n.endsWith("started"))).toEqual(["a started", "b started", "c started"]);
      expect(seen.sort()).toEqual(["a ending", "a started", "b ending", "b started", "c ending", "c started"]);
    } finally {
      await pool.close();
    }
  });

  it("rethrows a job's ConvertError with its code, message and hint, and goes on with the next job", async () => {
    const path = await servingScript(
      "async () => ({ context: {}, close: async () => undefined })",
      `async (job) => {
  if (job === "bad") throw new JobError("job bad failed", { hint: "do not send bad" });
  return job.toUpperCase();
}`,
    );
    const pool = new WorkerPool<string, string>(path, {}, 1, OPTIONS);
    try {
      const error = (await pool.run("bad").catch((e: unknown) => e)) as ConvertError;
      expect(error).toBeInstanceOf(ConvertError);
      expect([error.code, error.message, error.hint]).toEqual(["test.job-failed", "job bad failed", "do not send bad"]);
      expect(await pool.run("good")).toBe("GOOD");
    } finally {
      await pool.close();
    }
  });

  it("closes what a thread opened only after its queued jobs, then ends it", async () => {
    const marker = join(await makeTempDir(), "closed.txt");
    const path = await servingScript(
      `async () => {
  const { appendFile } = await import("node:fs/promises");
  const log = (line) => appendFile(${JSON.stringify(marker)}, line + "\\n");
  return { context: { log }, close: () => log("closed") };
}`,
      `async (job, { log }) => {
  await new Promise((resolve) => setTimeout(resolve, 20));
  await log(job);
  return job;
}`,
    );
    const pool = new WorkerPool<string, string>(path, {}, 1, OPTIONS);
    const running = Promise.all([pool.run("one"), pool.run("two")]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await pool.close();
    expect(await running).toEqual(["one", "two"]);
    expect((await readFile(marker, "utf8")).split("\n").filter(Boolean)).toEqual(["one", "two", "closed"]);
  });

  it("fails the jobs of a thread that ends cleanly before it is asked to, instead of waiting for them", async () => {
    const path = await script("quitting-worker.mjs", 'import { parentPort } from "node:worker_threads";\nparentPort.on("message", () => process.exit(0));\n');
    const pool = new WorkerPool<string, string>(path, {}, 1, OPTIONS);
    const error = (await pool.run("x").catch((e: unknown) => e)) as Error & { code?: string };
    expect(error.code).toBe("test.thread-failed");
    expect(error.message).toContain("while doing x: internal: a test worker thread exited with code 0 before it was asked to");
    await expect(pool.close()).resolves.toBeUndefined();
  });

  it("caps each thread's young generation, so that a long job does not grow every thread", async () => {
    // The thread makes garbage with survivors, as a long check does, then answers with the limit
    // as it sees it and the size of its new space: two semi-spaces, two thirds of the young
    // generation. The same script in an uncapped thread shows that this much garbage grows it.
    const path = await script(
      "limits-worker.mjs",
      `import { parentPort, resourceLimits } from "node:worker_threads";
import { getHeapSpaceStatistics } from "node:v8";
parentPort.on("message", (request) => {
  if (request.type === "close") { parentPort.close(); return; }
  let live = [];
  for (let i = 0; i < 3e6; i++) { live.push({ i }); if (live.length > 20000) live = []; }
  const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
  parentPort.postMessage({ id: request.id, result: { limit: resourceLimits.maxYoungGenerationSizeMb, newSpace: newSpace.space_size } });
});
`,
    );
    type Limits = { limit: number; newSpace: number };
    const cappedNewSpace = ((WORKER_YOUNG_GENERATION_MB << 20) * 2) / 3;
    const uncapped = new Worker(path);
    try {
      const reply = await new Promise<PoolReply<Limits>>((resolve, reject) => {
        uncapped.once("message", resolve);
        uncapped.once("error", reject);
        uncapped.postMessage({ type: "job", id: 0, job: "x" } satisfies PoolRequest<string>);
      });
      expect("result" in reply && reply.result.newSpace).toBeGreaterThan(cappedNewSpace);
    } finally {
      await uncapped.terminate();
    }
    const pool = new WorkerPool<string, Limits>(path, {}, 2, OPTIONS);
    try {
      for (const limits of await Promise.all([pool.run("x"), pool.run("y")])) {
        expect(limits.limit).toBe(WORKER_YOUNG_GENERATION_MB);
        expect(limits.newSpace).toBeLessThanOrEqual(cappedNewSpace);
      }
    } finally {
      await pool.close();
    }
  });
});
