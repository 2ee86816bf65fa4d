import type { HubSnapshot } from "./download.js";
import { HubByteSource } from "./hub-source.js";
import { assemble, checkAgainstIndex, type SafetensorsCheckpoint } from "../formats/safetensors/folder.js";
import type { SafetensorsIndex } from "../formats/safetensors/index-json.js";
import { openSafetensors, type SafetensorsFile } from "../formats/safetensors/reader.js";

/**
 * The safetensors shards of a Hub snapshot opened without downloading them: each header is
 * read with two Range requests (the 8-byte length, then the JSON). Checked against the index
 * as openSafetensorsFolder checks a local folder: every weight_map entry is in its shard, every
 * shard tensor is mapped to that shard, no name is stored twice. Tensor bytes, if ever read,
 * are Range requests too; `plan` reads none.
 */
export async function openRemoteCheckpoint(
  snapshot: HubSnapshot,
  shards: readonly string[],
  index: { readonly file: string; readonly index: SafetensorsIndex } | undefined,
): Promise<SafetensorsCheckpoint> {
  const files = await Promise.all(
    shards.map(async (path) => openSafetensors(await HubByteSource.open(snapshot.hub, snapshot.ref, snapshot.commit, path))),
  );
  const byShard = new Map(shards.map((shard, i) => [shard, files[i] as SafetensorsFile] as const));
  if (index !== undefined) {
    checkAgainstIndex(index.file, index.index, byShard);
  }
  return assemble(snapshot.label, files);
}

