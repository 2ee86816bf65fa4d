import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { REPO } from "./tiny-model.js";

export const FIXTURE = join(REPO, "fixtures", "tiny-mixtral");

/** Runs the built CLI (bin -> dist) as a user would; returns exit code and output. */
export function runCli(args: readonly string[], options: { cwd?: string } = {}): { code: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [join(REPO, "bin", "megatron-convert.js"), ...args], {
    encoding: "utf8",
    cwd: options.cwd ?? REPO,
    maxBuffer: 64 << 20,
  });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}
