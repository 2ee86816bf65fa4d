import { parentPort, workerData } from "node:worker_threads";
import { openHfModel } from "./hf-input.js";
import { openMcoreModel } from "./mcore-input.js";
import type { WriteSource } from "./write-threads.js";
import { serveRankFiles, type OpenedSpace, type RankFileWorkerData } from "../engine/rank-file-threads.js";

/** A writer thread (see engine/rank-file-threads.ts): writes the rank files it is sent from the source it is given. */
if (parentPort === null) {
  throw new Error("write-worker.js runs only as a worker thread");
}
serveRankFiles(parentPort, workerData as RankFileWorkerData<WriteSource>, openSource);

async function openSource(source: WriteSource): Promise<OpenedSpace> {
  const model = source.kind === "hf" ? await openHfModel(source.dir) : await openMcoreModel(source.dir, source.options);
  return { space: model.space, close: () => model.close() };
}
