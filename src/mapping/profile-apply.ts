import { sortByStateKey } from "./order.js";
import { matchPattern, renderPattern } from "./pattern.js";
import { matrixView, placeSegment, viewOf } from "./rect.js";
import type { PlannedEntry, PlannedExtraState, PlannedTensor } from "./plan.js";
import type { ExpertProfile, MegatronProfiles, Pack, Rename, SpecProfile } from "./profiles.js";

/**
 * What a model chunk's entries are, given the local names of the tensors it holds (in plan
 * order) under a spec and an expert implementation: renames, packs, `_extra_state` keys and the
 * state-dict order. It depends on the names alone, so every rank file whose chunk holds the same
 * names (all TP ranks, and all EP ranks, whose local expert numbers are the same) shares one; a
 * plan computes it once per distinct name list rather than once per rank file.
 */
export interface NameLayout {
  /** The entries in state-dict order. */
  readonly order: readonly LaidOutEntry[];
}

/** A tensor at `index` of the input, renamed; a pack of input tensors; or an `_extra_state` key. */
export type LaidOutEntry =
  | { readonly kind: "tensor"; readonly index: number; readonly name: string }
  | { readonly kind: "pack"; readonly name: string; readonly pack: Pack; readonly members: readonly number[] }
  | PlannedExtraState;

export function layOutNames(names: readonly string[], spec: SpecProfile, experts: ExpertProfile, profiles: MegatronProfiles): NameLayout {
  const renamed = renameAll(renameAll(names, spec.renames), experts.renames);
  const packed = packNames(renamed, experts.packs);
  const entries: LaidOutEntry[] = [...packed, ...extraStateKeys(packed.map((e) => e.name), spec)];
  return { order: sortByStateKey(entries, (e) => e.name, profiles.moduleOrder, profiles.leafOrder) };
}

/** A chunk's entries: `tensors` (the names `layout` was made from, in that order) renamed, packed and ordered by it. */
export function assembleEntries(tensors: readonly PlannedTensor[], layout: NameLayout): PlannedEntry[] {
  const renamed = (index: number, name: string): PlannedTensor => {
    const t = tensors[index] as PlannedTensor;
    return t.name === name ? t : { ...t, name };
  };
  return layout.order.map((e) => {
    switch (e.kind) {
      case "tensor":
        return renamed(e.index, e.name);
      case "pack":
        return packMembers(e.name, e.pack, e.members.map((i) => tensors[i] as PlannedTensor));
      case "extra-state":
        return e;
    }
  });
}

/** Renames local names by the first matching rule whose condition holds; captures carry over. */
function renameAll(names: readonly string[], renames: readonly Rename[]): string[] {
  if (renames.length === 0) {
    return [...names];
  }
  const present = new Set(names);
  return names.map((name) => {
    for (const r of renames) {
      const captures = matchPattern(r.from, name);
      if (captures !== undefined && (r.ifPresent === undefined || present.has(renderPattern(r.ifPresent.source, captures)))) {
        return renderPattern(r.to.source, captures);
      }
    }
    return name;
  });
}

/**
 * Packs per-expert tensors into one (legacy GroupedMLP): the tensors no pack takes, in order,
 * then each pack, its members by expert number (megatron-layout 4f).
 */
function packNames(names: readonly string[], packs: readonly Pack[]): LaidOutEntry[] {
  const out: LaidOutEntry[] = [];
  const groups = new Map<string, { pack: Pack; members: { j: number; index: number }[] }>();
  for (const [index, name] of names.entries()) {
    const hit = packs.flatMap((pack) => {
      const c = matchPattern(pack.members, name);
      return c === undefined ? [] : [{ pack, c }];
    })[0];
    if (hit === undefined) {
      out.push({ kind: "tensor", index, name });
      continue;
    }
    const into = renderPattern(hit.pack.into.source, hit.c);
    const group = groups.get(into) ?? { pack: hit.pack, members: [] };
    group.members.push({ j: hit.c.expert ?? 0, index });
    groups.set(into, group);
  }
  for (const [name, { pack, members }] of groups) {
    out.push({ kind: "pack", name, pack, members: members.sort((a, b) => a.j - b.j).map((m) => m.index) });
  }
  return out;
}

/** Member j of a pack is stored transposed, members one after another in memory. */
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
  return { kind: "tensor", name, dtype: first.dtype, shape, view: matrixView(count * tr, tc), segments };
}

/** The `_extra_state` keys the spec gives the modules of these tensor names. */
function extraStateKeys(names: readonly string[], spec: SpecProfile): PlannedExtraState[] {
  const keys = new Set<string>();
  for (const name of names) {
    const module = name.slice(0, name.lastIndexOf("."));
    const last = module.slice(module.lastIndexOf(".") + 1);
    if (spec.extraState.has(last)) {
      keys.add(`${module}._extra_state`);
    }
    for (const s of spec.stateOnlyModules) {
      const c = matchPattern(s.beside, name);
      if (c !== undefined) {
        keys.add(`${renderPattern(s.module.source, c)}._extra_state`);
      }
    }
  }
  return [...keys].map((name) => ({ kind: "extra-state", name }));
}
