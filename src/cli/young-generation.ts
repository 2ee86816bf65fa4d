import { setFlagsFromString } from "node:v8";
import type { Worker } from "node:worker_threads";

const GROWTH_FACTOR_ONE = "--semi-space-growth-factor=1";

/**
 * Keeps V8's young generation at its starting size for the whole run. Left alone, V8 doubles it
 * each time the bytes that survived its collections reach its size, up to two 16 MiB
 * semi-spaces, and a run over a larger model (more tensors in its plan and headers) gets further:
 * peak RSS then grew with the model although no buffer does. `--max-semi-space-size` is read only
 * at start-up, but the growth factor is read at each growth, so setting it to 1 here (the CLI,
 * before any command runs; not the library, whose host owns its flags) stops the growth. That
 * holds for V8 11 (Node 20, what this package is built and tested on); later V8 releases enforce a
 * factor of at least 2 (a flag implication), where this changes nothing and the young generation
 * grows as before, still within its 2 x 16 MiB.
 *
 * A worker thread's start puts the factor back to 2 for the whole process (V8's
 * Heap::ConfigureHeap, in heap.cc, raises a factor below 2 to 2 for every new isolate), so it is
 * set again once each worker is online. Without that, verify's main thread grew its young
 * generation to 16 MiB whenever it started a worker (2 vCPUs, the bench's 4.2 GiB model: 105 MiB
 * peak RSS, 95-100 with it set again; the few growths before the worker is online remain).
 */
export function keepYoungGenerationSmall(): void {
  setFlagsFromString(GROWTH_FACTOR_ONE);
  if (!process.listeners("worker").includes(setAgainOnceOnline)) {
    process.on("worker", setAgainOnceOnline);
  }
}

function setAgainOnceOnline(worker: Worker): void {
  worker.once("online", () => setFlagsFromString(GROWTH_FACTOR_ONE));
}
