import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import type { HubClient, HubFileInfo } from "./hub.js";
import { HubBadResponseError, HubChecksumError } from "./hub-errors.js";
import { formatRepoRef, type RepoRef } from "./repo-id.js";
import { FileAccessError } from "../formats/io/errors.js";

/** Reports bytes as they arrive; `resumedFrom` is what an earlier run left in `.incomplete`. */
export interface BlobProgress {
  start(resumedFrom: number): void;
  bytes(count: number): void;
}

/**
 * Downloads one file into `blobPath` the way huggingface_hub does: bytes go to
 * `blobPath.incomplete`, which is renamed into place once complete and checked. A partial
 * `.incomplete` left by an interrupted run is kept and continued with a Range request from
 * its end (the library itself restarts from zero, so the resume is done here, through the
 * library's Blob slices). The bytes are hashed against the Hub's oid: sha256 for LFS files,
 * the git blob sha1 for small ones; a mismatch deletes the partial file.
 */
export async function downloadBlob(hub: HubClient, ref: RepoRef, commit: string, info: HubFileInfo, blobPath: string, progress: BlobProgress): Promise<void> {
  const label = formatRepoRef(ref);
  const incomplete = `${blobPath}.incomplete`;
  await mkdir(dirname(blobPath), { recursive: true }).catch((cause: unknown) => {
    throw new FileAccessError(dirname(blobPath), "create the cache folder", cause);
  });
  let have = (await stat(incomplete).catch(() => undefined))?.size ?? 0;
  if (have > info.size) {
    await rm(incomplete, { force: true });
    have = 0;
  }
  const hasher = hasherFor(info);
  if (have > 0 && hasher !== undefined) {
    await hashFile(incomplete, hasher);
  }
  const source = await hub.openBlob(ref, commit, info.path);
  if (source.size !== info.size) {
    throw new HubBadResponseError(label, info.path, `the file is ${source.size} bytes, paths-info says ${info.size}`);
  }
  progress.start(have);
  const handle = await open(incomplete, have > 0 ? "a" : "w").catch((cause: unknown) => {
    throw new FileAccessError(incomplete, "open for writing", cause);
  });
  try {
    if (have < info.size) {
      have = await appendStream(hub, ref, info, (have > 0 ? source.slice(have) : source).stream(), handle, have, incomplete, hasher, progress);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  if (have !== info.size) {
    throw new HubBadResponseError(label, info.path, `the download ended after ${have} of ${info.size} bytes`);
  }
  const found = hasher?.digest("hex");
  if (found !== undefined && found !== info.etag) {
    await rm(incomplete, { force: true });
    throw new HubChecksumError(label, info.path, info.etag, found);
  }
  await rename(incomplete, blobPath).catch((cause: unknown) => {
    throw new FileAccessError(blobPath, "move the finished download into place", cause);
  });
}

/** Appends the stream to the open file; network errors are translated, disk errors are FileAccessErrors. */
async function appendStream(
  hub: HubClient,
  ref: RepoRef,
  info: HubFileInfo,
  stream: ReadableStream<Uint8Array>,
  handle: FileHandle,
  start: number,
  file: string,
  hasher: Hash | undefined,
  progress: BlobProgress,
): Promise<number> {
  const reader = stream.getReader();
  let have = start;
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (error) {
        throw hub.translate(error, ref, info.path);
      }
      if (chunk.done) {
        return have;
      }
      if (have + chunk.value.byteLength > info.size) {
        await rm(file, { force: true });
        throw new HubBadResponseError(formatRepoRef(ref), info.path, `more than the ${info.size} bytes listed arrived (a Range request answered with the whole file?)`);
      }
      await writeAll(handle, chunk.value, file);
      hasher?.update(chunk.value);
      have += chunk.value.byteLength;
      progress.bytes(chunk.value.byteLength);
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, file: string): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done).catch((cause: unknown) => {
      throw new FileAccessError(file, "write", cause);
    });
    done += bytesWritten;
  }
}

function hasherFor(info: HubFileInfo): Hash | undefined {
  if (info.check === "sha256") {
    return createHash("sha256");
  }
  if (info.check === "git-sha1") {
    return createHash("sha1").update(`blob ${info.size}\0`);
  }
  return undefined;
}

async function hashFile(path: string, hasher: Hash): Promise<void> {
  try {
    for await (const chunk of createReadStream(path)) {
      hasher.update(chunk as Buffer);
    }
  } catch (cause) {
    throw new FileAccessError(path, "read the partial download", cause);
  }
}
