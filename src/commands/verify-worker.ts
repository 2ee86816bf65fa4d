import { parentPort, workerData } from "node:worker_threads";
import { openHfModel } from "./hf-input.js";
import { serveByteChecks } from "../verify/exact-threads.js";

/** A verify worker thread (see verify/exact-threads.ts): runs byte checks against the HF folder it is given. */
export interface VerifyWorkerData {
  readonly hfDir: string;
}

if (parentPort === null) {
  throw new Error("verify-worker.js runs only as a worker thread");
}
const { hfDir } = workerData as VerifyWorkerData;
serveByteChecks(parentPort, () => openHfModel(hfDir));
