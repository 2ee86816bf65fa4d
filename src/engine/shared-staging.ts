import { link, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { checkOutput, isStopping, replaceOutput, stagingDirOf, syncDir, syncTree } from "./atomic-dir.js";
import { acquireLock, OutputLockedError, type Lock } from "./output-lock.js";
import { formatShare, type WorkerShare } from "./worker-split.js";
import { ConvertError } from "../errors.js";

export class WorkerMismatchError extends ConvertError {
  readonly code = "output.worker-mismatch";
  constructor(staging: string, detail: string) {
    super(`${staging}: ${detail}; rerun every worker with the same options and worker count, or remove this folder to start over`);
  }
}

export class WorkerIncompleteError extends ConvertError {
  readonly code = "output.worker-incomplete";
  constructor(staging: string, missing: readonly string[]) {
    super(`${staging}: every worker reported done but ${missing.length} file(s) are missing: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", ..." : ""}`);
  }
}

/** What one worker of a split run did. */
export interface ShareOutcome {
  /** This worker found every share done and moved the checkpoint into place. */
  readonly published: boolean;
  readonly workersDone: number;
  /** Every worker is done but another holds the publish lock: who, and what to do if it is gone. */
  readonly publishing?: string;
}

export interface SharedWrite {
  readonly out: string;
  readonly share: WorkerShare;
  /** Same for every worker of one run: a digest of the plan, args and worker count. */
  readonly fingerprint: string;
  /** Writes this worker's files into the shared staging folder (each one atomically). */
  readonly writeShare: (staging: string) => Promise<void>;
  /** Paths (relative to the staging folder) that a complete checkpoint holds. */
  readonly expected: readonly string[];
  /** Writes what comes last (manifest, tracker) into the staging folder, once all files are there. */
  readonly finish: (staging: string) => Promise<void>;
  readonly force?: boolean;
  readonly ours?: (name: string) => boolean;
}

const STAMP = ".workers.json";
const PARTIAL = /\.partial-[0-9]+$/;

const doneMarker = (share: WorkerShare): string => `.worker-${share.index}-of-${share.count}.done`;

/**
 * One of N independent processes writing one checkpoint on a shared filesystem: they share the
 * staging folder beside `out`, each writes its files and a done marker, and the worker that
 * finds every marker present checks completeness, writes the tracker and moves the folder into
 * place. Until then nothing is at `out`.
 */
export async function writeSharedCheckpoint(w: SharedWrite): Promise<ShareOutcome> {
  await mkdir(dirname(w.out), { recursive: true });
  const lock = await acquireLock(`${w.out}.worker-${w.share.index}-of-${w.share.count}`);
  const staging = stagingDirOf(w.out);
  try {
    await checkOutput(w.out, w);
    await mkdir(staging, { recursive: true });
    await claimStaging(staging, w);
    await rm(join(staging, doneMarker(w.share)), { force: true });
    await w.writeShare(staging);
    await syncTree(staging);
    await writeFile(join(staging, doneMarker(w.share)), JSON.stringify({ fingerprint: w.fingerprint, worker: formatShare(w.share) }));
    await syncDir(staging);
    const done = await markersDone(staging, w.share.count);
    if (done < w.share.count) {
      return { published: false, workersDone: done };
    }
    const outcome = await finalizeOnce(staging, w);
    return { published: outcome === true, workersDone: done, ...(typeof outcome === "string" ? { publishing: outcome } : {}) };
  } finally {
    await lock.release();
  }
}

/** The first worker stamps the staging folder with the run's fingerprint; the others must match it. */
async function claimStaging(staging: string, w: SharedWrite): Promise<void> {
  const stamp = join(staging, STAMP);
  const content = JSON.stringify({ fingerprint: w.fingerprint, workers: w.share.count });
  const tmp = `${stamp}.partial-${hostname()}-${process.pid}`;
  await writeFile(tmp, content);
  try {
    await link(tmp, stamp);
    await clearStale(staging);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
      throw error;
    }
    const found = JSON.parse(await readFile(stamp, "utf8")) as { fingerprint?: string; workers?: number };
    if (found.workers !== w.share.count) {
      throw new WorkerMismatchError(staging, `staged for ${found.workers} workers, this is worker ${formatShare(w.share)}`);
    }
    if (found.fingerprint !== w.fingerprint) {
      throw new WorkerMismatchError(staging, "staged by a run with other options or another source");
    }
  } finally {
    await rm(tmp, { force: true });
  }
  const stale = (await readdir(staging)).filter((n) => !n.startsWith(".") && !w.ours?.(n));
  if (stale.length > 0) {
    throw new WorkerMismatchError(staging, `holds files no worker writes (${stale.slice(0, 3).join(", ")})`);
  }
}

/**
 * The first worker of a run finds the folder as a killed earlier run (single-process or split)
 * left it: everything in it but the new stamp and other workers' stamp attempts is stale. No
 * worker of this run writes before it has seen the stamp, so nothing of this run is removed.
 */
async function clearStale(staging: string): Promise<void> {
  for (const name of await readdir(staging)) {
    if (name !== STAMP && !name.startsWith(`${STAMP}.partial-`)) {
      await rm(join(staging, name), { recursive: true, force: true });
    }
  }
}

async function markersDone(staging: string, count: number): Promise<number> {
  const names = new Set(await readdir(staging));
  let done = 0;
  for (let index = 0; index < count; index++) {
    done += names.has(doneMarker({ index, count })) ? 1 : 0;
  }
  return done;
}

/**
 * Exactly one worker publishes, even when several finish at once: the others find the finalize
 * lock held (or, later, the staging folder already moved into place). A lock left by a worker
 * that died while publishing is taken over, so rerunning any worker finishes the job.
 */
async function finalizeOnce(staging: string, w: SharedWrite): Promise<boolean | string> {
  let lock: Lock;
  try {
    lock = await acquireLock(`${w.out}.finalize`);
  } catch (error) {
    if (error instanceof OutputLockedError) {
      return error.message;
    }
    throw error;
  }
  try {
    if (!(await exists(join(staging, STAMP)))) {
      return false;
    }
    await finalize(staging, w);
    return true;
  } finally {
    await lock.release();
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function finalize(staging: string, w: SharedWrite): Promise<void> {
  const present = new Set<string>();
  await listFiles(staging, "", present);
  const missing = w.expected.filter((p) => !present.has(p));
  if (missing.length > 0) {
    throw new WorkerIncompleteError(staging, missing);
  }
  await w.finish(staging);
  for (const name of [...present].filter((p) => PARTIAL.test(p) || p.split("/").pop()?.startsWith(".") === true)) {
    await rm(join(staging, name), { force: true });
  }
  await syncTree(staging);
  if (isStopping()) {
    throw new Error("stopping on a signal");
  }
  const lock = await acquireLock(w.out);
  try {
    await replaceOutput(w.out, staging, w);
    await syncDir(dirname(w.out));
  } finally {
    await lock.release();
  }
}

async function listFiles(root: string, prefix: string, into: Set<string>): Promise<void> {
  for (const entry of await readdir(join(root, prefix), { withFileTypes: true })) {
    const relative = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) {
      await listFiles(root, relative, into);
    } else {
      into.add(relative);
    }
  }
}

/** A worker writes each file under a temporary name and renames it: no file is ever half there. */
export function partialName(path: string): string {
  return `${path}.partial-${process.pid}`;
}
