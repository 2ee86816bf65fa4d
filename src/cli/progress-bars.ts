import cliProgress from "cli-progress";
import { formatBytes, writeErr } from "./print.js";
import type { ProgressEvent, ProgressListener } from "../engine/progress.js";

/**
 * A cli-progress bar on a TTY; otherwise one plain (or JSON) line per finished file, on stderr,
 * so stdout stays clean for --json output.
 */
export function progressReporter(options: { json: boolean; quiet: boolean }): { listener: ProgressListener; stop: () => void } {
  if (options.quiet) {
    return { listener: () => undefined, stop: () => undefined };
  }
  if (process.stderr.isTTY && !options.json) {
    return ttyBar();
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

function ttyBar(): { listener: ProgressListener; stop: () => void } {
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
