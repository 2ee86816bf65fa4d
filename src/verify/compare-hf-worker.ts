import { parentPort, workerData } from "node:worker_threads";
import { openFolderPair, runCompareJob } from "./compare-hf-ranges.js";
import { serveJobs } from "../engine/worker-pool.js";

/** A worker thread of `verify <hf-dir> <hf-dir>` (see compare-hf.ts): compares byte ranges of the two folders it is given. */
export interface CompareHfWorkerData {
  readonly a: string;
  readonly b: string;
}

if (parentPort === null) {
  throw new Error("compare-hf-worker.js runs only as a worker thread");
}
const { a, b } = workerData as CompareHfWorkerData;
serveJobs(parentPort, () => openFolderPair(a, b), runCompareJob);
