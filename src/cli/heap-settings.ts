import { setFlagsFromString } from "node:v8";
import type { Worker } from "node:worker_threads";

/**
 * V8 heap settings the CLI makes before any command runs (the library never touches its host's
 * flags). Both keep peak RSS near what the run holds live, which grows with the tensor count (the
 * plan and the rank files' headers), never with the bytes.
 */

const GROWTH_FACTOR_ONE = "--semi-space-growth-factor=1";
const OLD_GENERATION_GROWTH = "--heap-growing-percent=30";

/**
 * Keeps V8's young generation at its starting size for the whole run. Left alone, V8 doubles it
 * each time the bytes that survived its collections reach its size, up to two 16 MiB
 * semi-spaces, and a run over a larger model (more tensors in its plan and headers) gets further:
 * peak RSS then grew with the model although no buffer does. `--max-semi-space-size` is read only
 * at start-up, but the growth factor is read at each growth, so setting it to 1 here stops the
 * growth. That holds for V8 11 (Node 20, what this package is built and tested on); later V8
 * releases enforce a factor of at least 2 (a flag implication), where this changes nothing and
 * the young generation grows as before, still within its 2 x 16 MiB.
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

/**
 * Lets the old generation grow only 30% beyond what a full collection left live before the next
 * one. V8 otherwise picks a factor of up to 4 from its GC and allocation speeds
 * (MemoryController::GrowingFactor, heap-controller.cc, which reads this flag at each
 * collection, so setting it here takes effect). With a small young generation many short-lived
 * objects of a run over many tensors are promoted and die there, so the old generation filled up
 * with garbage: on a 64-expert, 128-layer model (25,000 HF tensors; 2 vCPUs) verify peaked at
 * 216-255 MiB with 42-60 MiB live, 140-142 with this; mcore2hf 214 against 162-165 and reshard
 * 223-227 against 191-194, for 8% more time there (3.9-5.5 s runs). Runs with few tensors (the
 * bench's Mixtral-shaped models) never reach a full collection that this would change.
 */
export function keepOldGenerationClose(): void {
  setFlagsFromString(OLD_GENERATION_GROWTH);
}
