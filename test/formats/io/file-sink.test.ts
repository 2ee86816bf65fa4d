import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FileSink } from "../../../src/formats/io/file-sink.js";
import { makeTempDir } from "../../support/tmpdir.js";

const MiB = 1 << 20;

/** Deterministic pieces of mixed sizes: small ones are coalesced, large ones written directly. */
function* pieces(total: number): Generator<Uint8Array> {
  const sizes = [17, 300_000, 3 * MiB + 5, 64 << 10, 9 * MiB];
  for (let at = 0, i = 0; at < total; i++) {
    const n = Math.min(sizes[i % sizes.length] ?? 1, total - at);
    const piece = new Uint8Array(n);
    for (let j = 0; j < n; j += 4096) {
      piece[j] = (at + j) & 0xff;
    }
    piece[n - 1] = i & 0xff;
    yield piece;
    at += n;
  }
}

describe("FileSink", () => {
  it("writes every byte in order across background flushes, small and large writes mixed", async () => {
    const dir = await makeTempDir();
    const total = 150 * MiB + 123; // past two background datasyncs (every 64 MiB)
    const want = createHash("sha256");
    const sinks = await Promise.all([FileSink.create(join(dir, "a.bin")), FileSink.create(join(dir, "b.bin")), FileSink.create(join(dir, "c.bin"))]);
    for (const piece of pieces(total)) {
      want.update(piece);
      // three files at once: more than the two background flushes allowed in flight
      for (const sink of sinks) {
        await sink.write(piece);
      }
      piece.fill(0xee); // the caller may reuse its buffer once write resolves
    }
    expect(sinks.map((s) => s.position)).toEqual([total, total, total]);
    await Promise.all(sinks.map((s) => s.close()));
    const digest = want.digest("hex");
    for (const name of ["a.bin", "b.bin", "c.bin"]) {
      expect((await stat(join(dir, name))).size).toBe(total);
      expect(createHash("sha256").update(await readFile(join(dir, name))).digest("hex")).toBe(digest);
    }
  });

  it("abandons a file while a background flush may be in flight", async () => {
    const dir = await makeTempDir();
    const sink = await FileSink.create(join(dir, "x.bin"));
    for (const piece of pieces(70 * MiB)) {
      await sink.write(piece);
    }
    await expect(sink.abandon()).resolves.toBeUndefined();
  });
});
