import { viewOf } from "./rect.js";
import { matchPattern, renderPattern } from "./pattern.js";
import type { HfView } from "./table.js";
import type { TensorSpec } from "../model/tensor.js";

/** Where a virtual tensor's rows lie in the real (fused) tensor. */
export interface ViewOrigin {
  readonly actual: string;
  readonly rowOffset: number;
}

export interface ExpandedTensors {
  /** The tensors the rules see: real ones, with fused tensors replaced by their views. */
  readonly tensors: readonly TensorSpec[];
  /** Virtual name -> origin; real tensors are absent. */
  readonly origins: ReadonlyMap<string, ViewOrigin>;
}

/**
 * Replaces every real tensor that a view reads from (`of`) by the views it yields. A view with
 * an {expert} capture that `of` lacks selects that index along dim 0 of `of`.
 */
export function expandViews(tensors: readonly TensorSpec[], views: readonly HfView[]): ExpandedTensors {
  const out: TensorSpec[] = [];
  const origins = new Map<string, ViewOrigin>();
  for (const tensor of tensors) {
    const matching = views.flatMap((view) => {
      const captures = matchPattern(view.of, tensor.name);
      return captures === undefined ? [] : [{ view, captures }];
    });
    if (matching.length === 0) {
      out.push(tensor);
      continue;
    }
    for (const { view, captures } of matching) {
      for (const v of viewsOf(tensor, view, captures)) {
        out.push(v.spec);
        origins.set(v.spec.name, v.origin);
      }
    }
  }
  return { tensors: out, origins };
}

function viewsOf(
  tensor: TensorSpec,
  view: HfView,
  captures: Readonly<Record<string, number | undefined>>,
): { spec: TensorSpec; origin: ViewOrigin }[] {
  const selects = view.name.captures.includes("expert") && !view.of.captures.includes("expert");
  const indices = selects ? (tensor.shape[0] ?? 0) : 1;
  const inner = selects ? tensor.shape.slice(1) : tensor.shape;
  const [part, parts] = view.part;
  const innerRows = viewOf(inner).rows;
  const partShape = [(inner[0] ?? 1) / parts, ...inner.slice(1)];
  const result: { spec: TensorSpec; origin: ViewOrigin }[] = [];
  for (let index = 0; index < indices; index++) {
    const name = renderPattern(view.name.source, selects ? { ...captures, expert: index } : captures);
    const rowOffset = index * innerRows + (part * innerRows) / parts;
    result.push({ spec: { name, dtype: tensor.dtype, shape: partShape }, origin: { actual: tensor.name, rowOffset } });
  }
  return result;
}
