import { parentPort, workerData } from "node:worker_threads";
import { openHfModel } from "./hf-input.js";
import { serveRankFileChecks } from "../verify/exact-threads.js";

/** A verify worker thread (see verify/exact-threads.ts): checks rank files against the HF folder it is given. */
export interface VerifyWorkerData {
  readonly hfDir: string;
}

if (parentPort === null) {
  throw new Error("verify-worker.js runs only as a worker thread");
}
const { hfDir } = workerData as VerifyWorkerData;
serveRankFileChecks(parentPort, () => openHfModel(hfDir));
