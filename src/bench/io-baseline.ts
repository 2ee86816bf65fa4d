import { mkdir, open } from "node:fs/promises";
import { dirname, join } from "node:path";
import { listTree } from "./tree.js";

/**
 * The disk-speed baselines, run as their own process like the commands they are compared with:
 *   node dist/bench/io-baseline.js copy <out-dir> <tree>...   read every file, write the same bytes
 *                                                             to a new file under out-dir, fsync each
 *   node dist/bench/io-baseline.js read <tree>...             read every file once
 * Files are processed one after another in large sequential chunks, with one reused buffer.
 */
const CHUNK = 16 << 20;

async function readAll(path: string, buffer: Uint8Array, each: (bytes: Uint8Array) => Promise<void>): Promise<void> {
  const source = await open(path, "r");
  try {
    let position = 0;
    for (;;) {
      const { bytesRead } = await source.read(buffer, 0, buffer.byteLength, position);
      if (bytesRead === 0) {
        return;
      }
      position += bytesRead;
      await each(buffer.subarray(0, bytesRead));
    }
  } finally {
    await source.close();
  }
}

async function copyFile(from: string, to: string, buffer: Uint8Array): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  const target = await open(to, "wx");
  try {
    let position = 0;
    await readAll(from, buffer, async (bytes) => {
      let done = 0;
      while (done < bytes.byteLength) {
        const { bytesWritten } = await target.write(bytes, done, bytes.byteLength - done, position);
        done += bytesWritten;
        position += bytesWritten;
      }
    });
    await target.sync();
  } finally {
    await target.close();
  }
}

async function main(argv: readonly string[]): Promise<void> {
  const [mode, ...rest] = argv;
  const buffer = new Uint8Array(CHUNK);
  if (mode === "copy" && rest.length >= 2) {
    const [out, ...trees] = rest as [string, ...string[]];
    for (const [i, tree] of trees.entries()) {
      for (const file of await listTree(tree)) {
        await copyFile(file.path, join(out, String(i), file.relative), buffer);
      }
    }
  } else if (mode === "read" && rest.length >= 1) {
    let checksum = 0;
    for (const tree of rest) {
      for (const file of await listTree(tree)) {
        await readAll(file.path, buffer, async (bytes) => {
          checksum ^= bytes[bytes.byteLength - 1] ?? 0; // touch the data, as a consumer would
        });
      }
    }
    process.stdout.write(`${checksum}\n`);
  } else {
    process.stderr.write("usage: io-baseline.js copy <out-dir> <tree>... | read <tree>...\n");
    process.exitCode = 2;
  }
}

await main(process.argv.slice(2));
