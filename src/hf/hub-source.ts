import type { HubClient } from "./hub.js";
import { HubBadResponseError } from "./hub-errors.js";
import { formatRepoRef, type RepoRef } from "./repo-id.js";
import type { ByteSource } from "../formats/io/byte-source.js";
import { EndOfFileError } from "../formats/io/errors.js";

/**
 * A file on the Hub read by position: each `read` is one HTTP Range request (a slice of the
 * library's Blob), so reading a safetensors header costs two small requests, whatever the
 * shard's size. Nothing is cached on disk.
 */
export class HubByteSource implements ByteSource {
  private constructor(
    readonly name: string,
    readonly size: number,
    private readonly blob: Blob,
    private readonly hub: HubClient,
    private readonly ref: RepoRef,
    private readonly path: string,
  ) {}

  /** Resolves the file (one probe request for its URL and size). */
  static async open(hub: HubClient, ref: RepoRef, commit: string, path: string): Promise<HubByteSource> {
    const blob = await hub.openBlob(ref, commit, path);
    return new HubByteSource(`${formatRepoRef(ref)}:${path}`, blob.size, blob, hub, ref, path);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new EndOfFileError(this.name, offset, length, Math.max(0, this.size - offset));
    }
    if (length === 0) {
      return new Uint8Array(0);
    }
    const bytes = await this.hub.run(this.ref, this.path, async () => new Uint8Array(await this.blob.slice(offset, offset + length).arrayBuffer()));
    if (bytes.byteLength !== length) {
      throw new HubBadResponseError(
        formatRepoRef(this.ref),
        this.path,
        `asked for bytes ${offset}-${offset + length - 1} and got ${bytes.byteLength} bytes (does the server honour Range requests?)`,
      );
    }
    return bytes;
  }

  async close(): Promise<void> {
    // Nothing is held open between requests.
  }
}
