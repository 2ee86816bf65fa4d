import { spawnSync } from "node:child_process";
import { listTree } from "./tree.js";

/**
 * Dropping files from the kernel's page cache, so that the next reads come from the disk: the bench's
 * `--cache cold`. Node has no posix_fadvise, so each file goes through GNU dd, whose
 * `iflag=nocache count=0` is posix_fadvise(POSIX_FADV_DONTNEED) over the whole file (coreutils
 * manual, "dd invocation"). The kernel only drops clean pages, so `sync` runs first: a file that was
 * just written would otherwise stay cached. No root needed, and nothing else on the machine loses
 * its cache (unlike /proc/sys/vm/drop_caches).
 */
export class PageCacheError extends Error {
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`could not drop ${path} from the page cache: ${detail}; --cache cold needs \`sync\` and GNU dd with iflag=nocache (Linux coreutils)`);
    this.name = "PageCacheError";
  }
}

function runTool(command: string, args: readonly string[], path: string): void {
  const result = spawnSync(command, [...args], { encoding: "utf8" });
  if (result.error !== undefined) {
    throw new PageCacheError(path, `${command}: ${result.error.message}`);
  }
  if (result.status !== 0) {
    throw new PageCacheError(path, `${command} exited with ${result.status ?? result.signal}: ${result.stderr.trim()}`);
  }
}

/** Writes back every dirty page, then drops every regular file under `dirs` from the page cache. */
export async function evictTrees(dirs: readonly string[]): Promise<number> {
  runTool("sync", [], dirs.join(", "));
  let files = 0;
  for (const dir of dirs) {
    for (const file of await listTree(dir)) {
      runTool("dd", [`if=${file.path}`, "iflag=nocache", "count=0", "status=none"], file.path);
      files++;
    }
  }
  return files;
}
