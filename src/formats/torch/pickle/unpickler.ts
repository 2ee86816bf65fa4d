import { pickleLimits, type PickleLimits } from "./limits.js";
import { Machine, type PersistentLoad } from "./machine.js";
import { OP } from "./opcodes.js";
import { CONTAINER_HANDLERS } from "./op-containers.js";
import { OBJECT_HANDLERS } from "./op-objects.js";
import { SCALAR_HANDLERS, type Handler } from "./op-scalars.js";
import type { PyValue } from "./values.js";

export type { PickleLimits } from "./limits.js";
export { DEFAULT_PICKLE_LIMITS } from "./limits.js";
export type { PersistentLoad } from "./machine.js";

export interface UnpickleOptions {
  /** Shown in errors. */
  readonly file: string;
  readonly limits?: Partial<PickleLimits>;
  readonly persistentLoad?: PersistentLoad;
}

const HANDLERS = new Map<number, Handler>([...SCALAR_HANDLERS, ...CONTAINER_HANDLERS, ...OBJECT_HANDLERS]);

/**
 * The restricted unpickler: executes nothing. It implements every opcode of protocols 0-5
 * except the extension registry and out-of-band buffers, accepts only the globals of
 * allowed-globals.ts, and enforces PickleLimits. Each failure is a typed ConvertError naming the
 * file and the byte position in the pickle.
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): PyValue {
  const m = new Machine(bytes, options.file, pickleLimits(options.limits), options.persistentLoad);
  for (;;) {
    m.opStart = m.input.position;
    const op = m.input.u8("an opcode (the pickle has no STOP)");
    if (op === OP.STOP) {
      return m.pop("the result at STOP");
    }
    const handler = HANDLERS.get(op);
    if (handler === undefined) {
      return m.fail(`unknown opcode 0x${op.toString(16).padStart(2, "0")}`);
    }
    handler(m);
  }
}
