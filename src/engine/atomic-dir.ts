import { rmSync } from "node:fs";
import { mkdir, open, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ConvertError } from "../errors.js";

export class OutputExistsError extends ConvertError {
  readonly code = "output.exists";
  constructor(readonly dir: string) {
    super(`${dir}: the output folder exists and is not empty; choose another folder or remove it`);
  }
}

const active = new Set<string>();

/** Removes every staging folder still being written (called on SIGINT/SIGTERM before exiting). */
export function removeActiveStaging(): void {
  for (const dir of active) {
    rmSync(dir, { recursive: true, force: true });
  }
  active.clear();
}

/** The staging folder beside `out`; its name tells a rerun that it is ours and stale. */
export function stagingDirOf(out: string): string {
  return join(dirname(out), `.${basename(out)}.megatron-convert-partial`);
}

/**
 * Runs `write` against a fresh staging folder beside `out`, then renames it into place.
 * Nothing half-written is ever at `out`; on failure the staging folder is removed.
 */
export async function writeAtomically(out: string, write: (staging: string) => Promise<void>): Promise<void> {
  await ensureOutputFree(out);
  const staging = stagingDirOf(out);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  active.add(staging);
  try {
    await write(staging);
    await syncDir(staging);
    await ensureOutputFree(out);
    await rmdir(out).catch(() => undefined);
    await rename(staging, out);
    await syncDir(dirname(out));
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  } finally {
    active.delete(staging);
  }
}

async function ensureOutputFree(out: string): Promise<void> {
  const info = await stat(out).catch(() => undefined);
  if (info === undefined) {
    await mkdir(dirname(out), { recursive: true });
    return;
  }
  if (!info.isDirectory() || (await readdir(out)).length > 0) {
    throw new OutputExistsError(out);
  }
}

export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
