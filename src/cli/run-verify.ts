import { stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { table, writeOut } from "./print.js";
import { ExitWithCode } from "../errors.js";
import type { ExactReport } from "../verify/report.js";

export async function runVerify(hf: string, mcore: string, flags: { report?: string; json?: boolean; jobs: number }): Promise<void> {
  const secondIsHf = (await stat(join(mcore, "config.json")).catch(() => undefined)) !== undefined;
  const report = secondIsHf ? await hfAgainstHf(hf, mcore, flags.jobs) : await hfAgainstMegatron(hf, mcore, flags);
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

/** Each mode loads only its own modules: comparing two HF folders needs no plan, torch reader or Hub client. */
async function hfAgainstHf(a: string, b: string, jobs: number): Promise<ExactReport> {
  const { compareHfFolders } = await import("../verify/compare-hf.js");
  return compareHfFolders(a, b, { jobs });
}

async function hfAgainstMegatron(hf: string, mcore: string, flags: { json?: boolean; jobs: number }): Promise<ExactReport> {
  const [{ downloadHf }, { verifyExact }] = await Promise.all([import("./hf-download.js"), import("../commands/verify.js")]);
  // A repo id is downloaded first, with progress (json: progress lines as JSON, stdout untouched).
  return verifyExact({ hf: await downloadHf(hf, { json: flags.json }), mcore, jobs: flags.jobs });
}
