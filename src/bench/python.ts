import { execFileSync } from "node:child_process";

/**
 * The Python with torch the bench may use: --python, else MEGATRON_CONVERT_PYTHON, else
 * /usr/bin/python3, else python3 (the order test/support/python.ts uses). undefined when none
 * imports torch; the torch baseline and load check are then skipped and the JSON says so.
 */
export function findPythonWithTorch(explicit?: string): { python: string; torch: string } | undefined {
  const candidates = [explicit, process.env["MEGATRON_CONVERT_PYTHON"], "/usr/bin/python3", "python3"].filter(
    (c): c is string => c !== undefined && c !== "",
  );
  for (const python of candidates) {
    try {
      const version = execFileSync(python, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
      return { python, torch: version.trim() };
    } catch {
      if (python === explicit) {
        throw new Error(`--python ${explicit}: cannot import torch with it`);
      }
    }
  }
  return undefined;
}
