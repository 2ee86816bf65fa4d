/**
 * Keys in the order nn.Module.state_dict() yields them: a module's own parameters (in
 * `leafOrder`, `_extra_state` last) before its children, children in registration order
 * (`moduleOrder`), numbered children by number.
 */
export function compareStateKeys(a: string, b: string, moduleOrder: readonly string[], leafOrder: readonly string[]): number {
  return compareStateParts(a.split("."), b.split("."), moduleOrder, leafOrder);
}

/** `items` sorted by compareStateKeys of their names, each name split once (a plan sorts thousands). */
export function sortByStateKey<T>(items: readonly T[], nameOf: (item: T) => string, moduleOrder: readonly string[], leafOrder: readonly string[]): T[] {
  return items
    .map((item) => ({ item, parts: nameOf(item).split(".") }))
    .sort((a, b) => compareStateParts(a.parts, b.parts, moduleOrder, leafOrder))
    .map((d) => d.item);
}

function compareStateParts(pa: readonly string[], pb: readonly string[], moduleOrder: readonly string[], leafOrder: readonly string[]): number {
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const sa = pa[i] as string;
    const sb = pb[i] as string;
    if (sa === sb) {
      continue;
    }
    const leafA = i === pa.length - 1;
    const leafB = i === pb.length - 1;
    if (leafA !== leafB) {
      return leafA ? -1 : 1;
    }
    return leafA ? compareLeaves(sa, sb, leafOrder) : compareModules(sa, sb, moduleOrder);
  }
  return pa.length - pb.length;
}

function compareModules(a: string, b: string, order: readonly string[]): number {
  const na = /^[0-9]+$/.test(a);
  const nb = /^[0-9]+$/.test(b);
  if (na && nb) {
    return Number(a) - Number(b);
  }
  return rankOf(a, order) - rankOf(b, order) || a.localeCompare(b);
}

function compareLeaves(a: string, b: string, order: readonly string[]): number {
  const [baseA, numA] = splitNumber(a);
  const [baseB, numB] = splitNumber(b);
  return rankOf(baseA, order) - rankOf(baseB, order) || baseA.localeCompare(baseB) || numA - numB;
}

function splitNumber(leaf: string): [string, number] {
  const m = /^(.*?)([0-9]+)$/.exec(leaf);
  return m === null ? [leaf, -1] : [m[1] as string, Number(m[2])];
}

function rankOf(name: string, order: readonly string[]): number {
  const i = order.indexOf(name);
  return i < 0 ? order.length : i;
}
