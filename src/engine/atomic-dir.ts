import { rmSync } from "node:fs";
import { mkdir, open, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ConvertError } from "../errors.js";
import { acquireLock, type Lock } from "./output-lock.js";

export class OutputExistsError extends ConvertError {
  readonly code = "output.exists";
  constructor(
    readonly dir: string,
    readonly foreign: readonly string[],
  ) {
    super(
      foreign.length === 0
        ? `${dir}: the output folder exists and is not empty; pass --force to replace it, or choose another folder`
        : `${dir}: the output folder holds files megatron-convert did not write (${foreign.slice(0, 5).join(", ")}${foreign.length > 5 ? ", ..." : ""}); refusing to replace it even with --force`,
    );
  }
}

const active = new Set<string>();
/** Set once a signal asked us to stop: no staging folder is moved into place after that. */
let stopping = false;

/**
 * Removes every staging folder still being written (on SIGINT/SIGTERM, before exiting). The set
 * is kept, so a second call catches files that writes already in flight created after the first.
 */
export function removeActiveStaging(): void {
  stopping = true;
  for (const dir of active) {
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
  }
}

/** Whether an output is being written (a staging folder not yet published or removed). */
export function hasActiveStaging(): boolean {
  return active.size > 0;
}

/** True once a signal asked us to stop: nothing may be published after that. */
export function isStopping(): boolean {
  return stopping;
}

/** The staging folder beside `out`; its name tells a rerun that it is ours and stale. */
export function stagingDirOf(out: string): string {
  return join(dirname(out), `.${basename(out)}.megatron-convert-partial`);
}

/**
 * Runs `write` against a fresh staging folder beside `out`, then renames it into place.
 * Nothing half-written is ever at `out`; on failure the staging folder is removed. A lock
 * beside `out` keeps two runs apart; a staging folder left by a killed run is removed first.
 * `ours` says which top-level names of an existing `out` we could have written (--force
 * replaces only such folders).
 */
export async function writeAtomically(
  out: string,
  write: (staging: string) => Promise<void>,
  options: { force?: boolean; ours?: (name: string) => boolean } = {},
): Promise<void> {
  await mkdir(dirname(out), { recursive: true });
  const lock: Lock = await acquireLock(out);
  const staging = stagingDirOf(out);
  try {
    await checkOutput(out, options);
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging);
    active.add(staging);
    try {
      await write(staging);
      await syncTree(staging);
      if (stopping) {
        throw new Error("stopping on a signal");
      }
      await replaceOutput(out, staging, options);
      await syncDir(dirname(out));
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    } finally {
      active.delete(staging);
    }
  } finally {
    await lock.release();
  }
}

export async function checkOutput(out: string, options: { force?: boolean; ours?: (name: string) => boolean }): Promise<void> {
  const info = await stat(out).catch(() => undefined);
  if (info === undefined) {
    return;
  }
  const entries = info.isDirectory() ? await readdir(out) : [basename(out)];
  if (entries.length === 0) {
    return;
  }
  const foreign = info.isDirectory() ? entries.filter((e) => !(options.ours?.(e) ?? false)) : entries;
  if (options.force !== true || foreign.length > 0) {
    throw new OutputExistsError(out, options.force === true ? foreign : []);
  }
}

export async function replaceOutput(out: string, staging: string, options: { force?: boolean; ours?: (name: string) => boolean }): Promise<void> {
  await checkOutput(out, options);
  const info = await stat(out).catch(() => undefined);
  if (info !== undefined) {
    const old = `${staging}-replaced`;
    await rm(old, { recursive: true, force: true });
    if ((await readdir(out)).length === 0) {
      await rmdir(out);
    } else {
      await rename(out, old);
    }
    await rename(staging, out);
    await rm(old, { recursive: true, force: true });
    return;
  }
  await rename(staging, out);
}

/** fsync every folder under `dir` (files are synced as they are closed). */
export async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      await syncTree(join(dir, entry.name));
    }
  }
  await syncDir(dir);
}

export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
