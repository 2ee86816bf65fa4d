import type { SingleBar } from "cli-progress";
import { formatBytes, writeErr } from "./print.js";
import type { ProgressEvent, ProgressListener } from "../engine/progress.js";
import type { HubProgressEvent, HubProgressListener } from "../hf/download.js";

type CliProgress = typeof import("cli-progress");

/** cli-progress, loaded only when a bar is drawn: it costs about 20 ms of start-up that a run without a TTY does not need. */
async function loadCliProgress(): Promise<CliProgress> {
  return (await import("cli-progress")).default;
}

/**
 * A cli-progress bar on a TTY; otherwise one plain (or JSON) line per finished file, on stderr,
 * so stdout stays clean for --json output.
 */
export async function progressReporter(options: { json: boolean; quiet: boolean }): Promise<{ listener: ProgressListener; stop: () => void }> {
  if (options.quiet) {
    return { listener: () => undefined, stop: () => undefined };
  }
  if (process.stderr.isTTY && !options.json) {
    return ttyBar(await loadCliProgress());
  }
  let files = 0;
  let done = 0;
  const listener = (event: ProgressEvent): void => {
    if (event.kind === "plan") {
      files = event.files;
    } else if (event.kind === "file-done") {
      done++;
      writeErr(options.json ? JSON.stringify({ event: "file-done", file: event.file, done, files }) : `[${done}/${files}] ${event.file}`);
    }
  };
  return { listener, stop: () => undefined };
}

function ttyBar(cliProgress: CliProgress): { listener: ProgressListener; stop: () => void } {
  const bar = new cliProgress.SingleBar(
    {
      format: "{bar} {percentage}% | {done}/{total_h} | {files} | {speed}",
      hideCursor: true,
      stream: process.stderr,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  let value = 0;
  let files = 0;
  let filesDone = 0;
  const started = performance.now();
  const payload = () => ({
    done: formatBytes(value),
    files: `${filesDone}/${files} files`,
    speed: `${formatBytes(value / Math.max(0.001, (performance.now() - started) / 1000))}/s`,
  });
  const listener = (event: ProgressEvent): void => {
    if (event.kind === "plan") {
      files = event.files;
      bar.start(Math.max(1, event.totalBytes), 0, { ...payload(), total_h: formatBytes(event.totalBytes) });
    } else if (event.kind === "bytes") {
      value += event.bytes;
      bar.update(value, payload());
    } else if (event.kind === "file-done") {
      filesDone++;
      bar.update(value, payload());
    }
  };
  return { listener, stop: () => bar.stop() };
}

/**
 * Hub downloads: on a TTY a total bar and one bar per file being fetched (cli-progress
 * MultiBar); otherwise one line per finished file (JSON lines with --json), on stderr.
 */
export async function downloadReporter(options: { json: boolean; quiet: boolean }): Promise<{ listener: HubProgressListener; stop: () => void }> {
  if (options.quiet) {
    return { listener: () => undefined, stop: () => undefined };
  }
  if (process.stderr.isTTY && !options.json) {
    return downloadBars(await loadCliProgress());
  }
  let files = 0;
  let done = 0;
  const listener = (event: HubProgressEvent): void => {
    if (event.kind === "hub-plan") {
      // One plan per batch (config and index first, then the weights): counters restart.
      files = event.files - event.cachedFiles;
      done = 0;
      if (!options.json) {
        const cached = event.cachedFiles > 0 ? `${files > 0 ? "; " : ""}${event.cachedFiles} file(s) already in the cache` : "";
        writeErr(`${event.repo}: ${files > 0 ? `downloading ${files} file(s), ${formatBytes(event.totalBytes)}` : ""}${cached}`);
      }
    } else if (event.kind === "hub-file-start" && event.resumedFrom > 0 && !options.json) {
      writeErr(`resuming ${event.path} from ${formatBytes(event.resumedFrom)} of ${formatBytes(event.size)}`);
    } else if (event.kind === "hub-file-done") {
      done++;
      writeErr(options.json ? JSON.stringify({ event: "downloaded", file: event.path, bytes: event.size, done, files }) : `[${done}/${files}] downloaded ${event.path} (${formatBytes(event.size)})`);
    }
  };
  return { listener, stop: () => undefined };
}

function downloadBars(cliProgress: CliProgress): { listener: HubProgressListener; stop: () => void } {
  const multi = new cliProgress.MultiBar(
    { format: "{bar} {percentage}% | {done}/{size} | {name}", hideCursor: true, stream: process.stderr, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, { bar: SingleBar; value: number; size: number }>();
  let total: { bar: SingleBar; value: number; size: number; files: number; filesDone: number } | undefined;
  const totalPayload = () => ({ done: formatBytes(total?.value ?? 0), size: formatBytes(total?.size ?? 0), name: `total, ${total?.filesDone ?? 0}/${total?.files ?? 0} files` });
  const listener = (event: HubProgressEvent): void => {
    if (event.kind === "hub-plan") {
      total ??= { bar: multi.create(1, 0, {}), value: 0, size: 0, files: 0, filesDone: 0 };
      total.size += event.totalBytes;
      total.files += event.files - event.cachedFiles;
      total.bar.setTotal(Math.max(1, total.size));
      total.bar.update(total.value, totalPayload());
    } else if (event.kind === "hub-file-start") {
      const bar = multi.create(Math.max(1, event.size), event.resumedFrom, { done: formatBytes(event.resumedFrom), size: formatBytes(event.size), name: event.path });
      bars.set(event.path, { bar, value: event.resumedFrom, size: event.size });
      if (total !== undefined) {
        total.value += event.resumedFrom;
        total.bar.update(total.value, totalPayload());
      }
    } else if (event.kind === "hub-bytes") {
      const file = bars.get(event.path);
      if (file !== undefined) {
        file.value += event.bytes;
        file.bar.update(file.value, { done: formatBytes(file.value), size: formatBytes(file.size), name: event.path });
      }
      if (total !== undefined) {
        total.value += event.bytes;
        total.bar.update(total.value, totalPayload());
      }
    } else {
      const file = bars.get(event.path);
      if (file !== undefined) {
        multi.remove(file.bar);
        bars.delete(event.path);
      }
      if (total !== undefined) {
        total.filesDone++;
        total.bar.update(total.value, totalPayload());
      }
    }
  };
  return { listener, stop: () => multi.stop() };
}
