import { readMatrixRect } from "../engine/rect-reader.js";
import type { SourceSpace } from "../engine/source-space.js";
import type { SafetensorsCheckpoint } from "../formats/safetensors/folder.js";
import type { ViewOrigin } from "../mapping/hf-views.js";
import { viewOf, type MatrixView, type Rect } from "../mapping/rect.js";
import { dtypeBytes, type Dtype, type StoredTensor } from "../model/tensor.js";

/** HF tensors (real, and virtual views of fused ones) readable by rectangle. */
export class HfSourceSpace implements SourceSpace {
  constructor(
    private readonly checkpoint: SafetensorsCheckpoint,
    private readonly origins: ReadonlyMap<string, ViewOrigin>,
    private readonly virtualShapes: ReadonlyMap<string, readonly number[]>,
  ) {}

  describe(name: string): { dtype: Dtype; view: MatrixView } {
    const { tensor } = this.locate(name);
    const shape = this.virtualShapes.get(name) ?? tensor.shape;
    return { dtype: tensor.dtype, view: viewOf(shape) };
  }

  async readRect(name: string, rect: Rect, into?: Uint8Array): Promise<Uint8Array> {
    const { tensor, rowOffset } = this.locate(name);
    const source = this.checkpoint.sourceOf(tensor);
    return readMatrixRect(source, tensor.dataOffset, viewOf(tensor.shape), dtypeBytes(tensor.dtype), {
      ...rect,
      row: rect.row + rowOffset,
    }, into);
  }

  private locate(name: string): { tensor: StoredTensor; rowOffset: number } {
    const origin = this.origins.get(name);
    const tensor = this.checkpoint.tensors.get(origin?.actual ?? name);
    if (tensor === undefined) {
      throw new Error(`internal: no source tensor ${name}`);
    }
    return { tensor, rowOffset: origin?.rowOffset ?? 0 };
  }
}
