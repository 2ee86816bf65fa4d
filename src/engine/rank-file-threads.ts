import type { MessagePort } from "node:worker_threads";
import { inThisThread, type JobRunner } from "./job-runner.js";
import type { ProgressEvent, ProgressListener } from "./progress.js";
import { writeRankFile, type NonFiniteCounts, type RankFileJob, type RankFileSettings } from "./rank-file.js";
import type { SourceSpace } from "./source-space.js";
import { serveJobs, WorkerPool } from "./worker-pool.js";
import { backgroundSyncCounter, shareBackgroundSyncs } from "../formats/io/file-sink.js";

/**
 * Rank files written in worker threads beside this one. A rank file is written from its own reads
 * of the source, so files are independent; what costs CPU in writing one (reading from the page
 * cache, the zip's CRC-32, copying rows) runs on the thread that writes it. In one thread those
 * added up to the thread's limit: on 2 vCPUs, `hf2mcore` TP4 EP4 of the bench's 1.1 GiB model into
 * memory (tmpfs) spent 0.56 s in CRC-32, 0.52 s in reads and 0.3 s in copies of its 2.0-2.2 s.
 */

/** A writer thread's script calls serveRankFiles with this, and a way to open the source. */
export interface RankFileWorkerData<Source> {
  readonly source: Source;
  readonly settings: RankFileSettings;
  /** The process's count of background flushes (formats/io/file-sink.ts), shared by its threads. */
  readonly syncCounter: SharedArrayBuffer;
}

/** How rank files are spread over threads. */
export interface RankFileThreads {
  /** The worker script (it calls serveRankFiles). */
  readonly script: string;
  /** What the script opens the source from (plain data). */
  readonly source: unknown;
  /** Threads in all, this one included. */
  readonly count: number;
}

/** An opened source for a writer thread, and its cleanup. */
export interface OpenedSpace {
  readonly space: SourceSpace;
  close(): Promise<void>;
}

/**
 * Runners for `jobs` rank files at once (no more than there are files): this thread alone
 * (threads undefined), or this thread and threads.count - 1 workers, each writing its share of
 * them at once; this one, which also takes the workers' messages, the smallest share.
 */
export function rankFileRunners(
  threads: RankFileThreads | undefined,
  jobs: number,
  settings: RankFileSettings,
  space: SourceSpace,
  onProgress: ProgressListener,
): JobRunner<RankFileJob, NonFiniteCounts>[] {
  const count = threads?.count ?? 1;
  const mine = Math.max(1, Math.floor(jobs / count));
  const here = inThisThread(space, (job: RankFileJob, s: SourceSpace) => writeRankFile(job, settings, s, onProgress), async () => undefined, mine);
  if (threads === undefined || count <= 1) {
    return [here];
  }
  const each = Math.max(1, Math.ceil((jobs - mine) / (count - 1)));
  const data: RankFileWorkerData<unknown> = { source: threads.source, settings, syncCounter: backgroundSyncCounter() };
  const pool = new WorkerPool<RankFileJob, NonFiniteCounts>(threads.script, data, threads.count - 1, {
    name: "write",
    doing: (job) => `writing ${job.relative}`,
    queuedPerThread: each,
    onNote: (note) => onProgress(note as ProgressEvent),
  });
  return [here, pool];
}

/** The worker side: opens the source at once, then writes every rank file it is sent as it comes. */
export function serveRankFiles<Source>(port: MessagePort, data: RankFileWorkerData<Source>, open: (source: Source) => Promise<OpenedSpace>): void {
  shareBackgroundSyncs(data.syncCounter);
  serveJobs(
    port,
    async () => {
      const opened = await open(data.source);
      return { context: opened.space, close: () => opened.close() };
    },
    (job: RankFileJob, space: SourceSpace, note) => writeRankFile(job, data.settings, space, batched(note)),
    { oneAtATime: false },
  );
}

/** Bytes sent on when this many have added up (or the file is done): fewer messages than chunks. */
const PROGRESS_BYTES = 16 << 20;

/** One rank file's progress listener that sends its bytes on in batches, the rest with its end. */
function batched(send: (event: ProgressEvent) => void): ProgressListener {
  let pending = 0;
  return (event) => {
    if (event.kind === "bytes") {
      pending += event.bytes;
      if (pending >= PROGRESS_BYTES) {
        send({ kind: "bytes", file: event.file, bytes: pending });
        pending = 0;
      }
      return;
    }
    if (event.kind === "file-done" && pending > 0) {
      send({ kind: "bytes", file: event.file, bytes: pending });
      pending = 0;
    }
    send(event);
  };
}
