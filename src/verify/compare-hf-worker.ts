import { parentPort } from "node:worker_threads";
import { openCompareContext, runCompareJob } from "./compare-hf-ranges.js";
import { serveJobs } from "../engine/worker-pool.js";

/**
 * A worker thread of `verify <hf-dir> <hf-dir>` (see compare-hf.ts): compares the byte ranges it
 * is sent, each carrying where its bytes lie, so it reads no header.
 */
if (parentPort === null) {
  throw new Error("compare-hf-worker.js runs only as a worker thread");
}
serveJobs(parentPort, async () => openCompareContext(), runCompareJob);
