import { hfSourcesOf, planByteChecks, type CheckPlanOptions, type StoredBytes } from "./byte-checks.js";
import type { ByteChecker } from "./byte-checker.js";
import { LowestDifferences, tensorId } from "./compare-source.js";
import { checkHeader, type ExactCounts, type HeaderCheck, type RankFileCheck } from "./rank-headers.js";
import type { Difference } from "./report.js";
import { runPool } from "../engine/pool.js";
import { runJobs } from "../engine/job-runner.js";
import { SeenPickles } from "../formats/torch/seen-pickles.js";
import { rankDirName, RANK_FILE } from "../megatron/checkpoint-layout.js";
import { rankFileIn, type CheckpointFolder } from "../megatron/checkpoint-folder.js";
import type { ConversionPlan } from "../mapping/plan.js";

/** Rank-file headers read at once: each is a few small reads and opening the file, round trips to libuv's pool. */
const HEADERS_AT_ONCE = 8;

/**
 * Checks a checkpoint folder against a plan: the rank-folder set, every file's key set, every
 * tensor's dtype and shape (read from each file's header), then every byte of every tensor
 * (replicas and vocab padding included) against the bytes the plan derives from the HF tensors,
 * HF tensor by HF tensor (byte-checks.ts, which `options` go to).
 */
export async function checkCheckpoint(
  plan: ConversionPlan,
  folder: CheckpointFolder,
  checkers: readonly ByteChecker[],
  options: CheckPlanOptions = {},
): Promise<{ differences: Difference[]; counts: ExactCounts }> {
  const differences: Difference[] = [];
  const expected = new Set(plan.files.map((f) => rankDirName(f.rank, plan.layout)));
  for (const dir of folder.rankDirs.filter((d) => !expected.has(d))) {
    differences.push({ file: dir, key: "", hfTensors: [], problem: "unexpected rank folder for this layout" });
  }
  const files: RankFileCheck[] = [];
  for (const file of plan.files) {
    const dir = rankDirName(file.rank, plan.layout);
    if (folder.rankDirs.includes(dir)) {
      files.push({ path: rankFileIn(folder, dir), label: `${dir}/${RANK_FILE}`, plan: file });
    } else {
      differences.push({ file: dir, key: "", hfTensors: [], problem: "missing rank folder" });
    }
  }
  const counts: ExactCounts = { files: 0, tensors: 0, bytes: 0 };
  const stored: StoredBytes[] = [];
  const headers = await readHeaders(files);
  for (const header of headers) {
    differences.push(...header.differences);
    stored.push(...header.stored);
    counts.files += header.counts.files;
    counts.tensors += header.counts.tensors;
    counts.bytes += header.counts.bytes;
  }
  const found = new LowestDifferences();
  await runJobs(planByteChecks(stored, options), checkers, (d) => d.forEach((x) => found.note(x)));
  const sources = new Map(stored.map((s) => [tensorId(s.label, s.key), hfSourcesOf(s.tensor)]));
  for (const d of found.values()) {
    differences.push({ file: d.label, key: d.key, hfTensors: sources.get(tensorId(d.label, d.key)) ?? [], problem: d.problem });
  }
  differences.sort((a, b) => a.file.localeCompare(b.file) || a.key.localeCompare(b.key));
  return { differences, counts };
}

/** Every rank file's header check, in order; the pickles they share are read once (and let go of here). */
async function readHeaders(files: readonly RankFileCheck[]): Promise<HeaderCheck[]> {
  const headers = new Array<HeaderCheck>(files.length);
  const seen = new SeenPickles();
  await runPool([...files.keys()], HEADERS_AT_ONCE, async (i) => {
    headers[i] = await checkHeader(files[i] as RankFileCheck, seen);
  });
  return headers;
}
