import { execFileSync, spawnSync } from "node:child_process";

let cached: string | undefined;

/**
 * The Python that has torch: MEGATRON_CONVERT_PYTHON, else /usr/bin/python3, else python3.
 * Tests that need it fail (never skip) with a message saying what to install.
 */
export function pythonWithTorch(): string {
  if (cached !== undefined) {
    return cached;
  }
  const candidates = [process.env["MEGATRON_CONVERT_PYTHON"], "/usr/bin/python3", "python3"].filter(
    (c): c is string => c !== undefined && c !== "",
  );
  for (const candidate of candidates) {
    try {
      execFileSync(candidate, ["-c", "import torch"], { stdio: "ignore" });
      cached = candidate;
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error(
    "no python3 with torch found (tried MEGATRON_CONVERT_PYTHON, /usr/bin/python3, python3); " +
      "install it with: apt-get install -y --no-install-recommends python3-torch",
  );
}

/** Runs a Python snippet with torch; returns stdout. Arguments arrive as sys.argv[1:]. */
export function runPython(code: string, args: readonly string[] = [], input?: string): string {
  return execFileSync(pythonWithTorch(), ["-c", code, ...args], {
    encoding: "utf8",
    input,
    maxBuffer: 256 << 20,
    stdio: ["pipe", "pipe", "pipe"],
  });
}

/** Runs a Python script with torch; returns exit status, stdout and stderr (never throws on status). */
export function runPythonScript(script: string, args: readonly string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(pythonWithTorch(), [script, ...args], { encoding: "utf8", maxBuffer: 256 << 20 });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}
