import { matchPattern, renderPattern } from "./pattern.js";
import { placeSegment, viewOf } from "./rect.js";
import type { PlannedExtraState, PlannedTensor } from "./plan.js";
import type { Pack, Rename, SpecProfile } from "./profiles.js";

/** Renames local names by the first matching rule whose condition holds; captures carry over. */
export function applyRenames(tensors: readonly PlannedTensor[], renames: readonly Rename[]): PlannedTensor[] {
  const names = new Set(tensors.map((t) => t.name));
  return tensors.map((t) => {
    for (const r of renames) {
      const captures = matchPattern(r.from, t.name);
      if (captures !== undefined && (r.ifPresent === undefined || names.has(renderPattern(r.ifPresent.source, captures)))) {
        return { ...t, name: renderPattern(r.to.source, captures) };
      }
    }
    return t;
  });
}

/**
 * Packs per-expert tensors into one (legacy GroupedMLP): member j is stored transposed,
 * members one after another in memory (megatron-layout 4f).
 */
export function applyPacks(tensors: readonly PlannedTensor[], packs: readonly Pack[]): PlannedTensor[] {
  if (packs.length === 0) {
    return [...tensors];
  }
  const out: PlannedTensor[] = [];
  const groups = new Map<string, { pack: Pack; members: { j: number; t: PlannedTensor }[] }>();
  for (const t of tensors) {
    const hit = packs.flatMap((pack) => {
      const c = matchPattern(pack.members, t.name);
      return c === undefined ? [] : [{ pack, c }];
    })[0];
    if (hit === undefined) {
      out.push(t);
      continue;
    }
    const into = renderPattern(hit.pack.into.source, hit.c);
    const group = groups.get(into) ?? { pack: hit.pack, members: [] };
    group.members.push({ j: hit.c.expert ?? 0, t });
    groups.set(into, group);
  }
  for (const [name, { pack, members }] of groups) {
    out.push(packMembers(name, pack, members.sort((a, b) => a.j - b.j).map((m) => m.t)));
  }
  return out;
}

function packMembers(name: string, pack: Pack, members: readonly PlannedTensor[]): PlannedTensor {
  const first = members[0];
  if (first === undefined) {
    throw new Error(`internal: empty pack ${name}`);
  }
  const memberView = viewOf(first.shape);
  const tr = memberView.cols;
  const tc = memberView.rows;
  const count = members.length;
  const segments = members.flatMap((m, j) => m.segments.map((s) => placeSegment(s, j * tr, true)));
  const shape = pack.declaredShape === "concat-rows" ? [count * tr, tc] : [tr, count * tc];
  return { kind: "tensor", name, dtype: first.dtype, shape, view: { rows: count * tr, cols: tc }, segments };
}

/** The `_extra_state` keys the spec gives the modules present. */
export function extraStateKeys(tensors: readonly PlannedTensor[], spec: SpecProfile): PlannedExtraState[] {
  const keys = new Set<string>();
  for (const t of tensors) {
    const module = t.name.slice(0, t.name.lastIndexOf("."));
    const last = module.slice(module.lastIndexOf(".") + 1);
    if (spec.extraState.has(last)) {
      keys.add(`${module}._extra_state`);
    }
    for (const s of spec.stateOnlyModules) {
      const c = matchPattern(s.beside, t.name);
      if (c !== undefined) {
        keys.add(`${renderPattern(s.module.source, c)}._extra_state`);
      }
    }
  }
  return [...keys].map((name) => ({ kind: "extra-state", name }));
}
