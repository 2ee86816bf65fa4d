import { readMatrixRect } from "../engine/rect-reader.js";
import type { SourceSpace } from "../engine/source-space.js";
import type { ByteSource } from "../formats/io/byte-source.js";
import { readTensorBytes } from "../formats/torch/checkpoint-reader.js";
import type { TensorRef } from "../formats/torch/pickle/values.js";
import type { MatrixView, Rect } from "../mapping/rect.js";
import { dtypeBytes, type Dtype } from "../model/tensor.js";

export interface RankTensor {
  readonly ref: TensorRef;
  readonly source: ByteSource;
  /** The matrix the plan addresses (packed GroupedMLP weights differ from their shape). */
  readonly view: MatrixView;
}

/** Tensors of opened rank files, by rankTensorId, readable by rectangle. */
export class MegatronSourceSpace implements SourceSpace {
  constructor(private readonly tensors: ReadonlyMap<string, RankTensor>) {}

  describe(id: string): { dtype: Dtype; view: MatrixView } {
    const t = this.get(id);
    return { dtype: t.ref.dtype, view: t.view };
  }

  async readRect(id: string, rect: Rect, into?: Uint8Array): Promise<Uint8Array> {
    const t = this.get(id);
    const size = dtypeBytes(t.ref.dtype);
    if (t.ref.isContiguous) {
      return readMatrixRect(t.source, t.ref.contiguousRange().offset, t.view, size, rect, into);
    }
    const whole = await readTensorBytes(t.source, t.ref);
    const out = new Uint8Array(rect.rows * rect.cols * size);
    for (let r = 0; r < rect.rows; r++) {
      const from = ((rect.row + r) * t.view.cols + rect.col) * size;
      out.set(whole.subarray(from, from + rect.cols * size), r * rect.cols * size);
    }
    return out;
  }

  private get(id: string): RankTensor {
    const t = this.tensors.get(id);
    if (t === undefined) {
      throw new Error(`internal: no rank tensor ${id}`);
    }
    return t;
  }
}
