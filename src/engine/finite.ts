import { ConvertError } from "../errors.js";
import type { Dtype } from "../model/tensor.js";

export class NonFiniteTensorsError extends ConvertError {
  readonly code = "tensor.non-finite";
  constructor(
    readonly where: string,
    readonly tensors: readonly string[],
  ) {
    super(
      `${where}: --check-finite found NaN or Inf in ${tensors.length} tensor(s); nothing was written:\n` +
        tensors.slice(0, 50).map((t) => `  - ${t}`).join("\n"),
    );
  }
}

/** Exponent-all-ones masks: an element with these bits set is Inf or NaN. */
const MASKS: Partial<Record<Dtype, { bits: 16 | 32; mask: number }>> = {
  BF16: { bits: 16, mask: 0x7f80 },
  F16: { bits: 16, mask: 0x7c00 },
  F32: { bits: 32, mask: 0x7f800000 },
};

/** Counts NaN/Inf per tensor as bytes stream past (F64 is checked through Float64Array). */
export class FiniteScan {
  private readonly bad = new Map<string, number>();

  async *scan(chunks: AsyncIterable<Uint8Array>, dtype: Dtype, label: string): AsyncGenerator<Uint8Array> {
    for await (const chunk of chunks) {
      const n = countNonFinite(chunk, dtype);
      if (n > 0) {
        this.bad.set(label, (this.bad.get(label) ?? 0) + n);
      }
      yield chunk;
    }
  }

  get found(): ReadonlyMap<string, number> {
    return this.bad;
  }

  throwIfAny(where: string): void {
    throwIfNonFinite(where, [...this.bad]);
  }
}

/** Fails naming every tensor label with NaN/Inf counted (from one scan or several threads' scans). */
export function throwIfNonFinite(where: string, counts: readonly (readonly [string, number])[]): void {
  if (counts.length > 0) {
    throw new NonFiniteTensorsError(where, counts.map(([t, n]) => `${t}: ${n} non-finite value(s)`).sort());
  }
}

export function countNonFinite(bytes: Uint8Array, dtype: Dtype): number {
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  if (dtype === "F64") {
    const v = new Float64Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 8);
    let n = 0;
    for (const x of v) {
      n += Number.isFinite(x) ? 0 : 1;
    }
    return n;
  }
  const m = MASKS[dtype];
  if (m === undefined) {
    return 0;
  }
  const v = m.bits === 16 ? new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2) : new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    n += ((v[i] as number) & m.mask) === m.mask ? 1 : 0;
  }
  return n;
}
