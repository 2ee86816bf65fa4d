import { readdir, stat } from "node:fs/promises";
import { join, relative } from "node:path";

/** Every regular file under `dir`, sorted, with its size. */
export async function listTree(dir: string): Promise<{ path: string; relative: string; bytes: number }[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  files.sort();
  return Promise.all(files.map(async (path) => ({ path, relative: relative(dir, path), bytes: (await stat(path)).size })));
}

export async function treeBytes(dirs: readonly string[]): Promise<number> {
  let total = 0;
  for (const dir of dirs) {
    for (const file of await listTree(dir)) {
      total += file.bytes;
    }
  }
  return total;
}
