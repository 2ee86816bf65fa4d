import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { vi } from "vitest";
import type { HubOptions } from "../../src/hf/hub.js";
import { FIXTURE } from "../support/run-cli.js";
import { startHubServer, type HubRepoSpec, type HubServer } from "../support/hub-server.js";
import { makeTempDir } from "../support/tmpdir.js";
import { REPO } from "../support/tiny-model.js";
import { spawnCollect } from "../support/spawn.js";

export const REPO_ID = "acme/tiny-mixtral";
export const SHARDS = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] as const;
export const TOKENIZER = { "tokenizer.json": '{"version":"1.0","model":{"type":"BPE"}}\n', "tokenizer_config.json": '{"bos_token":"<s>"}\n' };

/** The tiny fixture as a Hub repo, with two tokenizer files and files a converter must not fetch. */
export function tinyRepo(overrides: Partial<HubRepoSpec> = {}): HubRepoSpec {
  return {
    id: REPO_ID,
    dir: FIXTURE,
    files: { ...TOKENIZER, "README.md": "# tiny\n", "pytorch_model.bin": "not needed", ...overrides.files },
    ...(overrides.omit === undefined ? {} : { omit: overrides.omit }),
    ...(overrides.gatedToken === undefined ? {} : { gatedToken: overrides.gatedToken }),
  };
}

/** A loopback Hub serving `specs` and a fresh cache folder (never ~/.cache). */
export async function hubWithCache(specs: readonly HubRepoSpec[] = [tinyRepo()]): Promise<{ server: HubServer; cacheDir: string; hub: HubOptions }> {
  const server = await startHubServer(specs);
  const cacheDir = await makeTempDir("mc-hub-cache-");
  return { server, cacheDir, hub: { hubUrl: server.url, cacheDir } };
}

/** Points the environment (what the commands read) at the loopback Hub and the temp cache. */
export function stubHubEnv(server: HubServer, cacheDir: string, token = ""): void {
  vi.stubEnv("HF_ENDPOINT", server.url);
  vi.stubEnv("HF_HUB_CACHE", cacheDir);
  vi.stubEnv("HF_TOKEN", token);
  vi.stubEnv("HUGGING_FACE_HUB_TOKEN", "");
}

/** The header size (8 + N) of a local safetensors file. */
export async function headerBytes(file: string): Promise<number> {
  const bytes = await readFile(file);
  return 8 + Number(bytes.readBigUInt64LE(0));
}

/** The built CLI (bin -> dist), spawned without blocking the event loop: the Hub server runs in this process. */
export function runCliAsync(args: readonly string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return spawnCollect(process.execPath, [join(REPO, "bin", "megatron-convert.js"), ...args], { cwd: REPO, env: { ...process.env, ...env } });
}

/** The environment a CLI run needs to use the loopback Hub and the temp cache (and no token of the user's). */
export function hubEnv(server: HubServer, cacheDir: string, token = ""): Record<string, string> {
  return { HF_ENDPOINT: server.url, HF_HUB_CACHE: cacheDir, HF_TOKEN: token, HUGGING_FACE_HUB_TOKEN: "" };
}
