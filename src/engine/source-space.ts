import type { MatrixView, Rect } from "../mapping/rect.js";
import type { Dtype } from "../model/tensor.js";

/** The tensors a plan's segments name, readable by rectangle. */
export interface SourceSpace {
  describe(name: string): { readonly dtype: Dtype; readonly view: MatrixView };
  /** Row-major bytes of `rect` of tensor `name`, in its own dtype. */
  readRect(name: string, rect: Rect, into?: Uint8Array): Promise<Uint8Array>;
}
