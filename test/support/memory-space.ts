import type { SourceSpace } from "../../src/engine/source-space.js";
import { tensorBytes, type TensorRecipe } from "../../src/engine/tensor-stream.js";
import { viewOf, type MatrixView, type Rect } from "../../src/mapping/rect.js";
import { dtypeBytes, type Dtype, type TensorSpec } from "../../src/model/tensor.js";

/** Tensors held in memory, addressed by rectangle: a SourceSpace without files. */
export class MemorySpace implements SourceSpace {
  readonly tensors = new Map<string, { dtype: Dtype; view: MatrixView; bytes: Uint8Array }>();

  add(name: string, dtype: Dtype, view: MatrixView, bytes: Uint8Array): void {
    this.tensors.set(name, { dtype, view, bytes });
  }

  describe(name: string): { dtype: Dtype; view: MatrixView } {
    const t = this.get(name);
    return { dtype: t.dtype, view: t.view };
  }

  async readRect(name: string, rect: Rect): Promise<Uint8Array> {
    const t = this.get(name);
    const size = dtypeBytes(t.dtype);
    const out = new Uint8Array(rect.rows * rect.cols * size);
    for (let r = 0; r < rect.rows; r++) {
      const from = ((rect.row + r) * t.view.cols + rect.col) * size;
      out.set(t.bytes.subarray(from, from + rect.cols * size), r * rect.cols * size);
    }
    return out;
  }

  private get(name: string) {
    const t = this.tensors.get(name);
    if (t === undefined) {
      throw new Error(`no tensor ${name}`);
    }
    return t;
  }
}

/** Deterministic pseudo-random bytes (xorshift32). */
export function seededBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export function spaceOf(specs: readonly TensorSpec[], seed = 1): MemorySpace {
  const space = new MemorySpace();
  specs.forEach((t, i) => {
    const view = viewOf(t.shape);
    space.add(t.name, t.dtype, view, seededBytes(view.rows * view.cols * dtypeBytes(t.dtype), seed * 1000 + i));
  });
  return space;
}

export async function collect(recipe: TensorRecipe, space: SourceSpace): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const c of tensorBytes(recipe, space)) {
    chunks.push(c);
  }
  return new Uint8Array(Buffer.concat(chunks));
}
