import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { iterationDirName, parseRankDirName, parseTracker, RANK_FILE, TRACKER_FILE } from "./checkpoint-layout.js";
import { MegatronCheckpointError } from "./errors.js";

/** A legacy checkpoint folder: which iteration, and the rank folders in it. */
export interface CheckpointFolder {
  readonly root: string;
  readonly iteration: number | "release";
  readonly iterationDir: string;
  /** Rank folder names (mp_rank_*), sorted. */
  readonly rankDirs: readonly string[];
}

/**
 * Finds the iteration folder (from the tracker file, or `iteration` when given; a folder that is
 * itself an iteration folder works too) and lists its rank folders.
 */
export async function openCheckpointFolder(root: string, iteration?: number | "release"): Promise<CheckpointFolder> {
  let chosen = iteration;
  let iterationDir: string;
  if (chosen === undefined && (await hasRankDirs(root))) {
    iterationDir = root;
    chosen = /iter_([0-9]+)$/.exec(root)?.[1] !== undefined ? Number(/iter_([0-9]+)$/.exec(root)?.[1]) : "release";
  } else {
    if (chosen === undefined) {
      chosen = await readTracker(root);
    }
    iterationDir = join(root, iterationDirName(chosen));
  }
  const entries = await readdir(iterationDir).catch((cause: unknown) => {
    throw new MegatronCheckpointError(iterationDir, [`cannot list the iteration folder: ${cause instanceof Error ? cause.message : String(cause)}`]);
  });
  const rankDirs = entries.filter((e) => parseRankDirName(e) !== undefined).sort();
  if (rankDirs.length === 0) {
    throw new MegatronCheckpointError(iterationDir, ["no mp_rank_* folders"]);
  }
  return { root, iteration: chosen, iterationDir, rankDirs };
}

export function rankFileIn(folder: CheckpointFolder, rankDir: string): string {
  return join(folder.iterationDir, rankDir, RANK_FILE);
}

async function readTracker(root: string): Promise<number | "release"> {
  const file = join(root, TRACKER_FILE);
  const text = await readFile(file, "utf8").catch(() => undefined);
  if (text === undefined) {
    throw new MegatronCheckpointError(root, [
      `no ${TRACKER_FILE}: the checkpoint is incomplete (a conversion or save that did not finish?) or this is not a checkpoint folder; pass --iteration to read one anyway`,
    ]);
  }
  const parsed = parseTracker(text);
  if (parsed === undefined) {
    throw new MegatronCheckpointError(file, [`must hold "release" or an iteration number; found ${JSON.stringify(text.trim())}`]);
  }
  return parsed;
}

async function hasRankDirs(dir: string): Promise<boolean> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const e of entries) {
    if (parseRankDirName(e) !== undefined && (await stat(join(dir, e))).isDirectory()) {
      return true;
    }
  }
  return false;
}
