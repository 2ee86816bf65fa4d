import { parentPort, workerData } from "node:worker_threads";
import { checkRankFile } from "./exact.js";
import type { WorkerData, WorkerReply, WorkerRequest } from "./exact-threads.js";
import { openHfModel, type HfModel } from "../commands/hf-input.js";
import { ConvertError } from "../errors.js";

/** A verify worker thread (see exact-threads.ts): checks the rank files it is sent, one at a time. */
const port = parentPort;
if (port === null) {
  throw new Error("exact-worker.js runs only as a worker thread");
}
const { hfDir } = workerData as WorkerData;
let model: Promise<HfModel> | undefined;

port.on("message", (request: WorkerRequest) => {
  if (request.type === "close") {
    void model?.then((m) => m.close()).finally(() => port.close());
    return;
  }
  model ??= openHfModel(hfDir);
  model
    .then((m) => checkRankFile(request.job, m.space))
    .then(
      (result) => port.postMessage({ id: request.id, result } satisfies WorkerReply),
      (error: unknown) => port.postMessage({ id: request.id, error: describe(error) } satisfies WorkerReply),
    );
});

function describe(error: unknown): { code: string; message: string; hint?: string } {
  if (error instanceof ConvertError) {
    return error.hint === undefined ? { code: error.code, message: error.message } : { code: error.code, message: error.message, hint: error.hint };
  }
  return { code: "internal", message: error instanceof Error ? (error.stack ?? error.message) : String(error) };
}
