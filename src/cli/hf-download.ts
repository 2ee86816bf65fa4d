import { downloadReporter } from "./progress-bars.js";
import { hubRefOf, prefetchHfInput } from "../commands/hf-input.js";

/** For a repo id: downloads it into the HF cache with progress bars and returns `org/name@<commit>`. */
export async function downloadHf(hf: string, flags: { json?: boolean; quiet?: boolean }): Promise<string> {
  if ((await hubRefOf(hf)) === undefined) {
    return hf; // a local folder: nothing to download, no bars to load
  }
  const downloads = await downloadReporter({ json: flags.json === true, quiet: flags.quiet === true });
  try {
    return await prefetchHfInput(hf, { onDownload: downloads.listener });
  } finally {
    downloads.stop();
  }
}
