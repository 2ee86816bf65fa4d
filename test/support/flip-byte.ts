import { open } from "node:fs/promises";

/** Flips the bits of `mask` in the byte at `at` of the file at `path`, in place. */
export async function flipByte(path: string, at: number, mask = 0x40): Promise<void> {
  const file = await open(path, "r+");
  try {
    const byte = new Uint8Array(1);
    await file.read(byte, 0, 1, at);
    byte[0] = (byte[0] ?? 0) ^ mask;
    await file.write(byte, 0, 1, at);
  } finally {
    await file.close();
  }
}
