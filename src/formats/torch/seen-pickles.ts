import type { PickleLimits } from "./pickle/limits.js";
import { copyWithStorages } from "./pickle/copy-value.js";
import { unpickle, type PersistentLoad } from "./pickle/unpickler.js";
import { TensorRef, type PyValue, type StorageRef } from "./pickle/values.js";

/** A persistent id the pickle asked for, and where (for the errors of a later archive's load). */
interface Load {
  readonly pid: PyValue;
  readonly position: number;
}

interface Seen {
  readonly bytes: Uint8Array;
  readonly limits: PickleLimits;
  readonly root: PyValue;
  readonly loads: readonly Load[];
}

/** Distinct pickles remembered; the oldest is forgotten first. */
const REMEMBERED = 4;

/**
 * data.pkl records already unpickled, for the archives that follow: the rank files of one
 * checkpoint often hold byte-identical pickles (hf2mcore writes the same keys, shapes and storage
 * keys into every rank), and unpickling is most of what reading a rank file's header costs, most
 * of all in a fresh process (the first files run before V8 has optimised the unpickler: the
 * bench's 4.2 GiB model read its 16 headers in 195-237 ms, and in 122-126 ms when 15 of them were
 * copied from the first's tree).
 *
 * A pickle with the same bytes, read under the same limits, gives a copy of the tree unpickled
 * first, each tensor rebound to the storage record of the same key in its own archive: the
 * archive's persistent-id loader is asked for every storage the pickle names, in the same order,
 * so its records are checked as if it had been unpickled. The first archive gets the tree itself:
 * readers must not modify the trees they read (none does).
 */
export class SeenPickles {
  private readonly seen: Seen[] = [];

  unpickle(bytes: Uint8Array, file: string, limits: PickleLimits, persistentLoad: PersistentLoad): PyValue {
    const match = this.seen.find((s) => sameLimits(s.limits, limits) && sameBytes(s.bytes, bytes));
    if (match !== undefined) {
      return replay(match, persistentLoad);
    }
    const loads: Load[] = [];
    const root = unpickle(bytes, {
      file,
      limits,
      persistentLoad: (pid, position) => {
        loads.push({ pid, position });
        return persistentLoad(pid, position);
      },
    });
    this.seen.push({ bytes, limits, root, loads });
    if (this.seen.length > REMEMBERED) {
      this.seen.shift();
    }
    return root;
  }
}

/** The seen tree with this archive's storages (each loaded by key, as the pickle asked for it). */
function replay(seen: Seen, persistentLoad: PersistentLoad): PyValue {
  const byKey = new Map<string, StorageRef>();
  for (const { pid, position } of seen.loads) {
    const loaded = persistentLoad(pid, position);
    if (loaded instanceof TensorRef) {
      byKey.set(loaded.storage.key, loaded.storage);
    }
  }
  return copyWithStorages(seen.root, (old) => {
    const storage = byKey.get(old.key);
    if (storage === undefined) {
      throw new Error(`internal: storage "${old.key}" was not loaded again`);
    }
    // a _rebuild_tensor_v3 view sees the (byte) storage as elements of its own dtype
    return storage.dtype === old.dtype && storage.numel === old.numel ? storage : { ...storage, dtype: old.dtype, numel: old.numel };
  });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

function sameLimits(a: PickleLimits, b: PickleLimits): boolean {
  return (Object.keys(a) as (keyof PickleLimits)[]).every((k) => a[k] === b[k]);
}
