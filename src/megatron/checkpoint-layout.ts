import type { ParallelLayout, RankCoord } from "../model/parallel-layout.js";

/** Megatron's legacy folder names (megatron-layout 1.1, get_checkpoint_name). */
export const TRACKER_FILE = "latest_checkpointed_iteration.txt";
export const RANK_FILE = "model_optim_rng.pt";

/** "release", or iter_0000123 for an iteration. */
export function iterationDirName(iteration: number | "release"): string {
  return iteration === "release" ? "release" : `iter_${String(iteration).padStart(7, "0")}`;
}

/** mp_rank_TT, + _PPP when PP > 1, + _EEE when EP > 1. */
export function rankDirName(rank: RankCoord, layout: Pick<ParallelLayout, "pp" | "ep">): string {
  let name = `mp_rank_${String(rank.tp).padStart(2, "0")}`;
  if (layout.pp > 1) {
    name += `_${String(rank.pp).padStart(3, "0")}`;
  }
  if (layout.ep > 1) {
    name += `_${String(rank.ep).padStart(3, "0")}`;
  }
  return name;
}

export function rankFilePath(rank: RankCoord, layout: Pick<ParallelLayout, "pp" | "ep">, iteration: number | "release"): string {
  return `${iterationDirName(iteration)}/${rankDirName(rank, layout)}/${RANK_FILE}`;
}

/** The tracker's content: "release" or the iteration number, no newline (main save_checkpoint). */
export function trackerContent(iteration: number | "release"): string {
  return iteration === "release" ? "release" : String(iteration);
}

/** Parses a tracker file's content the way read_metadata does. */
export function parseTracker(content: string): number | "release" | undefined {
  const text = content.trim();
  if (text === "release") {
    return "release";
  }
  return /^[0-9]+$/.test(text) ? Number(text) : undefined;
}

/** Parses mp_rank_TT[_PPP][_EEE] into its numbers (ambiguous without knowing PP and EP). */
export function parseRankDirName(name: string): number[] | undefined {
  const m = /^mp_rank_([0-9]{2})(?:_([0-9]{3}))?(?:_([0-9]{3}))?$/.exec(name);
  if (m === null) {
    return undefined;
  }
  return m.slice(1).filter((s): s is string => s !== undefined).map(Number);
}
