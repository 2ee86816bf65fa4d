import { downloadReporter } from "./progress-bars.js";
import { hubRefOf, prefetchHfInput, resolveHfConfigInput } from "../commands/hf-input.js";
import type { HubProgressListener } from "../hf/download.js";

type DownloadFlags = { json?: boolean; quiet?: boolean };

/** For a repo id: downloads it into the HF cache with progress bars and returns `org/name@<commit>`. */
export function downloadHf(hf: string, flags: DownloadFlags): Promise<string> {
  return withDownloadBars(hf, flags, (onDownload) => prefetchHfInput(hf, { onDownload }));
}

/** --hf-config org/name[@rev]: config.json and tokenizer files fetched into the HF cache; returns its snapshot folder. */
export function downloadHfConfig(input: string, flags: DownloadFlags): Promise<string> {
  return withDownloadBars(input, flags, (onDownload) => resolveHfConfigInput(input, { onDownload }));
}

/** Runs `fetch` with download bars for a repo id; a local path is returned as it is, with no bars loaded. */
async function withDownloadBars(input: string, flags: DownloadFlags, fetch: (onDownload: HubProgressListener) => Promise<string>): Promise<string> {
  if ((await hubRefOf(input)) === undefined) {
    return input;
  }
  const downloads = await downloadReporter({ json: flags.json === true, quiet: flags.quiet === true });
  try {
    return await fetch(downloads.listener);
  } finally {
    downloads.stop();
  }
}
