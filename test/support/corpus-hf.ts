import { cp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { FIXTURE } from "./run-cli.js";

export const SHARD = "model-00002-of-00002.safetensors";
export const INDEX = "model.safetensors.index.json";

type Header = Record<string, Record<string, unknown>>;

/** A copy of the tiny fixture to break. */
export async function fixtureCopy(dir: string): Promise<string> {
  const hf = join(dir, "hf");
  await cp(FIXTURE, hf, { recursive: true });
  return hf;
}

export async function readShard(path: string): Promise<{ header: Header; data: Uint8Array }> {
  const bytes = await readFile(path);
  const n = Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Header, data: bytes.subarray(8 + n) };
}

/** Rewrites a shard with an edited header (raw JSON text allowed) and optionally edited data. */
export async function writeShard(path: string, header: Header | string, data: Uint8Array): Promise<void> {
  let json = typeof header === "string" ? header : JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) {
    json += " ";
  }
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  await writeFile(path, Buffer.concat([prefix, Buffer.from(json), data]));
}

export async function editShard(hf: string, edit: (h: Header, data: Uint8Array) => { header: Header | string; data: Uint8Array }): Promise<void> {
  const path = join(hf, SHARD);
  const { header, data } = await readShard(path);
  const next = edit(header, data);
  await writeShard(path, next.header, next.data);
}

export async function editJson(path: string, edit: (j: Record<string, unknown>) => unknown): Promise<void> {
  const json = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
  await writeFile(path, typeof edit(json) === "string" ? String(edit(json)) : JSON.stringify(edit(json) ?? json));
}

/** The tensor names of the shard, sorted by data offset. */
export function byOffset(h: Header): string[] {
  return Object.keys(h)
    .filter((k) => k !== "__metadata__")
    .sort((a, b) => ((h[a]?.["data_offsets"] as number[])[0] ?? 0) - ((h[b]?.["data_offsets"] as number[])[0] ?? 0));
}

export { rm };
