import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

/**
 * `node dist/bench/probe.js <result.json> <script.js> [args...]` runs `script` in this very
 * process (as `node script args` would) and, when the process exits, writes the kernel's
 * accounting of it to result.json: getrusage(RUSAGE_SELF) ru_maxrss (peak resident set, KiB)
 * and CPU times. The converting process and the measured process are one and the same.
 */
const [resultFile, script, ...args] = process.argv.slice(2);
if (resultFile === undefined || script === undefined) {
  process.stderr.write("usage: probe.js <result.json> <script.js> [args...]\n");
  process.exit(2);
}
process.argv = [process.execPath, resolve(script), ...args];
process.on("exit", (code) => {
  const usage = process.resourceUsage();
  const result = { exitCode: code, maxRssKiB: usage.maxRSS, userSeconds: usage.userCPUTime / 1e6, systemSeconds: usage.systemCPUTime / 1e6 };
  writeFileSync(resultFile, `${JSON.stringify(result)}\n`);
});
await import(pathToFileURL(resolve(script)).href);
