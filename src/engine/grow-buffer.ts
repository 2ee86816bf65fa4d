/**
 * A buffer of at least `bytes` (at most `max` bytes are ever allocated): `current` when it is
 * large enough, else a new one at least twice its size (and at least `min`), so a reused buffer
 * that meets ever larger pieces is reallocated only a few times.
 */
export function atLeast(current: Uint8Array | undefined, bytes: number, max: number, min = 0): Uint8Array {
  if (current !== undefined && current.byteLength >= bytes) {
    return current;
  }
  return new Uint8Array(Math.min(max, Math.max(bytes, 2 * (current?.byteLength ?? 0), min)));
}
