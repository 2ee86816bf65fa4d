import type { ArgValue } from "./args.js";
import { PyDict, PyFloat, PyNamespace, PyOrderedDict, type PyValue, type TensorOut } from "../formats/torch/pickle/values.js";

/** One model chunk's entries in state-dict order: a tensor, or None for `_extra_state`. */
export interface ModelChunk {
  readonly key: string;
  readonly entries: readonly (readonly [string, TensorOut | null])[];
}

/** The CHECKPOINT_VERSION Megatron writes and expects (megatron-layout 2.1). */
export const CHECKPOINT_VERSION = 3.0;

/**
 * The dict saved in model_optim_rng.pt, as generate_state_dict builds it: args,
 * checkpoint_version, iteration, model (or model0..N), and the FLOPs counter.
 */
export function rankStateDict(args: ReadonlyMap<string, ArgValue>, chunks: readonly ModelChunk[], iteration: number): PyDict {
  const root = new PyDict();
  root.set("args", namespaceOf(args));
  root.set("checkpoint_version", new PyFloat(CHECKPOINT_VERSION));
  root.set("iteration", iteration);
  for (const chunk of chunks) {
    const model = new PyOrderedDict();
    for (const [name, value] of chunk.entries) {
      model.set(name, value);
    }
    root.set(chunk.key, model);
  }
  root.set("num_floating_point_operations_so_far", 0);
  return root;
}

export function namespaceOf(args: ReadonlyMap<string, ArgValue>): PyNamespace {
  const dict = new PyDict();
  for (const [key, value] of args) {
    dict.set(key, toPy(value));
  }
  return new PyNamespace(dict);
}

function toPy(value: ArgValue): PyValue {
  if (typeof value === "object" && value !== null) {
    return new PyFloat(value.float);
  }
  return value;
}
