import type { ByteSource } from "../formats/io/byte-source.js";
import { FileSource } from "../formats/io/file-source.js";

/**
 * Most rank files one thread keeps open. Checking by HF tensor touches a tensor's TP slices and
 * EP replicas in turn, a few dozen files at most, while a checkpoint may have hundreds of ranks
 * and a machine up to one thread per CPU.
 */
const MAX_OPEN = 64;

/** Rank files opened on first use and kept open (the least recently used closed beyond MAX_OPEN). */
export class RankFiles {
  private readonly open = new Map<string, { readonly source: Promise<ByteSource>; users: number }>();
  private readonly closing: Promise<void>[] = [];

  /** Runs `use` with the file at `path` open; it stays open at least until `use` is done. */
  async with<T>(path: string, use: (source: ByteSource) => Promise<T>): Promise<T> {
    let entry = this.open.get(path);
    if (entry === undefined) {
      this.evict();
      entry = { source: FileSource.open(path), users: 0 };
      entry.source.catch(() => undefined); // awaited below; a failed open fails each use
    }
    this.open.delete(path); // re-inserted last: Map order is the recency order
    this.open.set(path, entry);
    entry.users++;
    try {
      return await use(await entry.source);
    } finally {
      entry.users--;
    }
  }

  async close(): Promise<void> {
    const entries = [...this.open.values()];
    this.open.clear();
    await Promise.all([...this.closing, ...entries.map(closeQuietly)]);
  }

  /** Closes the least recently used files no one is reading, down to one below MAX_OPEN. */
  private evict(): void {
    for (const [path, entry] of this.open) {
      if (this.open.size < MAX_OPEN) {
        return;
      }
      if (entry.users === 0) {
        this.open.delete(path);
        this.closing.push(closeQuietly(entry));
      }
    }
  }
}

/** A read-only file's close cannot lose data; one that failed to open has nothing to close. */
function closeQuietly(entry: { readonly source: Promise<ByteSource> }): Promise<void> {
  return entry.source.then(
    (s) => s.close(),
    () => undefined,
  );
}
