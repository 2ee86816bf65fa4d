import type { ByteSource } from "../formats/io/byte-source.js";
import { FileSource } from "../formats/io/file-source.js";

/**
 * Files one thread keeps open beyond those in use. Checking by HF tensor touches the rank files
 * that hold its pieces (TP x EP of them for a dense weight), all held open while it is checked;
 * between checks the least recently used are closed down to this many, since a checkpoint may
 * have hundreds of ranks (or an HF folder hundreds of shards) and a machine up to one thread per CPU.
 */
const MAX_IDLE_OPEN = 64;

/** Files (rank files, HF shards) opened on first use and kept open. */
export class OpenFiles {
  private readonly open = new Map<string, { readonly source: Promise<ByteSource>; users: number }>();
  private readonly closing = new Set<Promise<void>>();

  /** Runs `use` with the file at `path` open; it stays open at least until `use` is done. */
  with<T>(path: string, use: (source: ByteSource) => Promise<T>): Promise<T> {
    const entry = this.take(path);
    return this.release([entry], entry.source.then(use));
  }

  /** Runs `use` with every file of `paths` open and kept open until it is done. */
  holding<T>(paths: readonly string[], use: () => Promise<T>): Promise<T> {
    const held = [...new Set(paths)].map((path) => this.take(path));
    return this.release(held, use());
  }

  async close(): Promise<void> {
    const entries = [...this.open.values()];
    this.open.clear();
    await Promise.all([...this.closing, ...entries.map(closeQuietly)]);
  }

  private take(path: string): { readonly source: Promise<ByteSource>; users: number } {
    const entry = this.open.get(path) ?? { source: FileSource.open(path), users: 0 };
    entry.source.catch(() => undefined); // awaited by its user; a failed open fails each use
    this.open.delete(path); // re-inserted last: Map order is the recency order
    this.open.set(path, entry);
    entry.users++;
    return entry;
  }

  /** Gives `held` back once `work` settles, and closes what is then beyond the limit. */
  private async release<T>(held: readonly { users: number }[], work: Promise<T>): Promise<T> {
    try {
      return await work;
    } finally {
      for (const entry of held) {
        entry.users--;
      }
      this.evict();
    }
  }

  /** Closes the least recently used files no one is reading, down to MAX_IDLE_OPEN. */
  private evict(): void {
    for (const [path, entry] of this.open) {
      if (this.open.size <= MAX_IDLE_OPEN) {
        return;
      }
      if (entry.users === 0) {
        this.open.delete(path);
        const closed = closeQuietly(entry).finally(() => this.closing.delete(closed));
        this.closing.add(closed);
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
