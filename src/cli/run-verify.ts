import { writeFile } from "node:fs/promises";
import { table, writeOut } from "./print.js";
import { downloadHf } from "./hf-download.js";
import { ExitWithCode } from "../errors.js";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { compareHfFolders } from "../verify/compare-hf.js";
import { verifyExact } from "../commands/verify.js";

export async function runVerify(hf: string, mcore: string, flags: { report?: string; json?: boolean; jobs: number }): Promise<void> {
  const secondIsHf = (await stat(join(mcore, "config.json")).catch(() => undefined)) !== undefined;
  // A repo id is downloaded first, with progress (json: progress lines as JSON, stdout untouched).
  const report = secondIsHf ? await compareHfFolders(hf, mcore) : await verifyExact({ hf: await downloadHf(hf, { json: flags.json }), mcore, jobs: flags.jobs });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  if (flags.report !== undefined) {
    await writeFile(flags.report, json);
  }
  if (flags.json === true) {
    writeOut(json);
  } else {
    writeOut(
      `verify exact: ${report.ok ? "OK" : "DIFFERENT"}: ${report.filesChecked} ${secondIsHf ? "safetensors" : "rank"} files, ${report.tensorsChecked} tensors, ` +
        `${report.bytesCompared} bytes compared in ${report.seconds.toFixed(2)} s${report.threads > 1 ? ` (${report.threads} threads)` : ""}`,
    );
    if (!report.ok) {
      writeOut(table([["file", "key", "problem"], ...report.differences.map((d) => [d.file, d.key, d.problem])]));
    }
  }
  if (!report.ok) {
    throw new ExitWithCode(1);
  }
}
