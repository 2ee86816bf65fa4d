import { spawnSync } from "node:child_process";
import { statfs } from "node:fs/promises";
import { listTree } from "./tree.js";

/**
 * Dropping files from the kernel's page cache, so that the next reads come from the disk: the bench's
 * `--cache cold`. Node has no posix_fadvise, so each file goes through GNU dd, whose
 * `iflag=nocache count=0` is posix_fadvise(POSIX_FADV_DONTNEED) over the whole file (coreutils
 * manual, "dd invocation"). The kernel only drops clean pages, so `sync -f` (syncfs of the folder's
 * filesystem) runs first: a file that was just written would otherwise stay cached. No root needed,
 * and no other file loses its cache (unlike /proc/sys/vm/drop_caches). Pages another process has
 * mapped stay, and so does whatever a virtual disk's host caches.
 */
export class PageCacheError extends Error {
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`--cache cold: cannot drop ${path} from the page cache: ${detail}`);
    this.name = "PageCacheError";
  }
}

const TOOLS_NEEDED = "it needs `sync -f` and GNU dd with iflag=nocache (Linux coreutils)";

/** statfs f_type of filesystems that keep their files in the page cache itself (linux/magic.h). */
const IN_MEMORY_FILESYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x01021994, "tmpfs"],
  [0x858458f6, "ramfs"],
]);

/** Throws when `dir` is on a filesystem whose files cannot leave memory: a "cold" run there would be warm. */
export async function assertEvictable(dir: string): Promise<void> {
  const kind = IN_MEMORY_FILESYSTEMS.get(Number((await statfs(dir)).type));
  if (kind !== undefined) {
    throw new PageCacheError(dir, `it is on ${kind}, whose files live in memory; give --dir a folder on a disk`);
  }
}

function runTool(command: string, args: readonly string[], path: string): void {
  const result = spawnSync(command, [...args], { encoding: "utf8" });
  if (result.error !== undefined) {
    throw new PageCacheError(path, `${command}: ${result.error.message}; ${TOOLS_NEEDED}`);
  }
  if (result.status !== 0) {
    throw new PageCacheError(path, `${command} exited with ${result.status ?? result.signal}: ${result.stderr.trim()}; ${TOOLS_NEEDED}`);
  }
}

/** Writes back the folders' filesystems, then drops every regular file under `dirs` from the page cache. */
export async function evictTrees(dirs: readonly string[]): Promise<number> {
  let files = 0;
  for (const dir of dirs) {
    await assertEvictable(dir);
    runTool("sync", ["-f", dir], dir);
    for (const file of await listTree(dir)) {
      runTool("dd", [`if=${file.path}`, "iflag=nocache", "count=0", "status=none"], file.path);
      files++;
    }
  }
  return files;
}
