import { copyFile, mkdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { downloadBlob } from "./blob-download.js";
import type { HubClient, HubFileInfo } from "./hub.js";
import { HubFileNotFoundError } from "./hub-errors.js";
import { formatRepoRef, repoFolderName, type RepoRef } from "./repo-id.js";
import { FileAccessError } from "../formats/io/errors.js";

/**
 * What a download reports; only the CLI draws it. Per file: start (with what an earlier run
 * left), bytes, done; per call of `download`: one plan with the files and bytes still to fetch.
 */
export type HubProgressEvent =
  | { readonly kind: "hub-plan"; readonly repo: string; readonly files: number; readonly cachedFiles: number; readonly totalBytes: number }
  | { readonly kind: "hub-file-start"; readonly path: string; readonly size: number; readonly resumedFrom: number }
  | { readonly kind: "hub-bytes"; readonly path: string; readonly bytes: number }
  | { readonly kind: "hub-file-done"; readonly path: string; readonly size: number };

export type HubProgressListener = (event: HubProgressEvent) => void;

/** Files fetched at once. */
const CONCURRENT_FILES = 4;

/**
 * One commit of a Hub repo in the standard cache (`<cacheDir>/models--org--name/`, shared with
 * huggingface_hub, transformers and @huggingface/hub): `blobs/<etag>` holds the bytes,
 * `snapshots/<commit>/<path>` links to them, `refs/<revision>` names the commit.
 */
export interface HubSnapshot {
  readonly hub: HubClient;
  readonly ref: RepoRef;
  /** `org/name@rev`, for messages. */
  readonly label: string;
  readonly commit: string;
  /** `snapshots/<commit>`: a model folder once the files are downloaded. */
  readonly dir: string;
  /** Whether the repo has `path` (only for the paths listed when the snapshot was opened). */
  has(path: string): boolean;
  /** Checks that the repo has each path not yet in the snapshot (at most one paths-info request); else a HubFileNotFoundError. */
  require(paths: readonly string[], referencedBy?: string): Promise<void>;
  /** Downloads each path not yet in the snapshot; a path the repo lacks is a HubFileNotFoundError. */
  download(paths: readonly string[], options?: { onProgress?: HubProgressListener | undefined; referencedBy?: string }): Promise<void>;
}

/** Resolves the revision to a commit and lists which of `candidates` the repo has (two small requests). */
export async function openHubSnapshot(hub: HubClient, ref: RepoRef, candidates: readonly string[]): Promise<HubSnapshot> {
  const commit = await hub.commitOf(ref);
  const storage = join(hub.options.cacheDir, repoFolderName(ref));
  if (ref.revision !== commit) {
    await writeRef(storage, ref.revision, commit);
  }
  const known = await hub.listPaths(ref, commit, candidates);
  const dir = join(storage, "snapshots", commit);
  const label = formatRepoRef(ref);
  const pendingOf = async (paths: readonly string[]): Promise<string[]> => (await Promise.all(paths.map(async (p) => ((await isFile(join(dir, p))) ? [] : [p])))).flat();
  const infosOf = async (paths: readonly string[], referencedBy?: string): Promise<HubFileInfo[]> => {
    const unknown = paths.filter((p) => !known.has(p));
    if (unknown.length > 0) {
      for (const [path, info] of await hub.listPaths(ref, commit, unknown)) {
        known.set(path, info);
      }
    }
    return paths.map((path) => {
      const info = known.get(path);
      if (info === undefined) {
        throw new HubFileNotFoundError(label, path, referencedBy);
      }
      return info;
    });
  };
  return {
    hub,
    ref,
    label,
    commit,
    dir,
    has: (path) => known.has(path),
    require: async (paths, referencedBy) => {
      await infosOf(await pendingOf(paths), referencedBy);
    },
    async download(paths, options = {}) {
      const onProgress = options.onProgress ?? (() => undefined);
      const pending = await pendingOf(paths);
      const infos = await infosOf(pending, options.referencedBy);
      const totalBytes = infos.reduce((sum, i) => sum + i.size, 0);
      onProgress({ kind: "hub-plan", repo: label, files: paths.length, cachedFiles: paths.length - pending.length, totalBytes });
      await eachLimited(infos, CONCURRENT_FILES, async (info) => {
        const blobPath = join(storage, "blobs", info.etag);
        if (!(await isFile(blobPath))) {
          await downloadBlob(hub, ref, commit, info, blobPath, {
            start: (resumedFrom) => onProgress({ kind: "hub-file-start", path: info.path, size: info.size, resumedFrom }),
            bytes: (bytes) => onProgress({ kind: "hub-bytes", path: info.path, bytes }),
          });
        }
        await linkPointer(blobPath, join(dir, info.path));
        onProgress({ kind: "hub-file-done", path: info.path, size: info.size });
      });
    },
  };
}

/** `refs/<revision>` holds the commit, as huggingface_hub writes it (so offline tools find the snapshot). */
async function writeRef(storage: string, revision: string, commit: string): Promise<void> {
  const file = join(storage, "refs", revision);
  if ((await readFile(file, "utf8").catch(() => undefined)) === commit) {
    return;
  }
  try {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, commit);
  } catch (cause) {
    throw new FileAccessError(file, "write the cache ref", cause);
  }
}

/** snapshots/<commit>/<path> -> ../../blobs/<etag> (a relative link; a copy where links are not allowed). */
async function linkPointer(blobPath: string, pointer: string): Promise<void> {
  try {
    await mkdir(dirname(pointer), { recursive: true });
    await rm(pointer, { force: true });
    await symlink(relative(dirname(pointer), blobPath), pointer).catch(async (error: unknown) => {
      const code = (error as { code?: unknown }).code;
      if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EACCES") {
        throw error;
      }
      await copyFile(blobPath, pointer);
    });
  } catch (cause) {
    throw new FileAccessError(pointer, "link the snapshot file to its blob", cause);
  }
}

/** Runs `fn` over `items`, `limit` at a time; after a failure starts no more, waits for the running ones, throws the first failure. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) {
    throw failure.error;
  }
}

/** A regular file, following links (a snapshot pointer whose blob exists). */
async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() === true;
}
