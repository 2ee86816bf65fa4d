import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hf2mcore } from "../../src/commands/convert.js";
import { ConvertError } from "../../src/errors.js";
import { openSafetensors } from "../../src/formats/safetensors/reader.js";
import { parseSafetensorsIndex } from "../../src/formats/safetensors/index-json.js";
import { readTensorBytes, readTorchCheckpoint } from "../../src/formats/torch/checkpoint-reader.js";
import { PyDict, TensorRef, type PyValue } from "../../src/formats/torch/pickle/values.js";
import { MemorySource } from "../support/safetensors-builders.js";
import { FIXTURE } from "../support/run-cli.js";
import { makeTempDir } from "../support/tmpdir.js";
import { targetOf } from "../support/targets.js";

/**
 * Mutation fuzzing of the readers: seeded, bounded in cases and time. Every mutated input must
 * end in success or a ConvertError, never another exception, a hang or a huge allocation.
 * FUZZ_CASES=10000 npm run fuzz runs the long version.
 */
const CASES = Number(process.env["FUZZ_CASES"] ?? 1500);
const TIME_BUDGET_MS = Number(process.env["FUZZ_MS"] ?? 60_000);
const RSS_BOUND = 1.5 * 2 ** 30;

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

/** Byte flips, truncations, and edits of little-endian length fields at random places. */
function mutate(input: Uint8Array, random: () => number): Uint8Array {
  const bytes = new Uint8Array(input);
  const kind = Math.floor(random() * 4);
  if (kind === 0) {
    for (let i = 0, n = 1 + Math.floor(random() * 8); i < n; i++) {
      const at = Math.floor(random() * bytes.length);
      bytes[at] = (bytes[at] ?? 0) ^ (1 << Math.floor(random() * 8));
    }
    return bytes;
  }
  if (kind === 1) {
    return bytes.subarray(0, Math.floor(random() * bytes.length));
  }
  const at = Math.floor(random() * Math.max(1, bytes.length - 8));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = [0, 0xffffffff, 0x7fffffff, 0x80000000, Math.floor(random() * 2 ** 32), bytes.length, bytes.length + 1];
  view.setUint32(at, values[Math.floor(random() * values.length)] ?? 0, true);
  if (kind === 3 && at + 8 <= bytes.length) {
    view.setUint32(at + 4, random() < 0.5 ? 0 : 0xffffffff, true);
  }
  return bytes;
}

function tensorsIn(value: PyValue, out: TensorRef[] = []): TensorRef[] {
  if (value instanceof TensorRef) {
    out.push(value);
  } else if (value instanceof PyDict) {
    for (const [, v] of value.entries) {
      tensorsIn(v, out);
    }
  }
  return out;
}

type Reader = (bytes: Uint8Array) => Promise<void>;

const readers: Record<string, Reader> = {
  safetensors: async (bytes) => {
    const file = await openSafetensors(new MemorySource("fuzz.safetensors", bytes));
    for (const t of file.tensors) {
      await file.source.read(t.dataOffset, t.byteLength);
    }
  },
  index: async (bytes) => {
    parseSafetensorsIndex(new TextDecoder().decode(bytes), "fuzz.index.json");
  },
  pt: async (bytes) => {
    const source = new MemorySource("fuzz.pt", bytes);
    const { root } = await readTorchCheckpoint(source);
    for (const t of tensorsIn(root)) {
      await readTensorBytes(source, t);
    }
  },
};

async function seeds(): Promise<Record<string, Uint8Array>> {
  const out = join(await makeTempDir(), "mcore");
  await hf2mcore({ ...targetOf({ tp: 2 }), hf: FIXTURE, out, jobs: 1 });
  return {
    safetensors: await readFile(join(FIXTURE, "model-00002-of-00002.safetensors")),
    index: await readFile(join(FIXTURE, "model.safetensors.index.json")),
    pt: await readFile(join(out, "release", "mp_rank_01", "model_optim_rng.pt")),
  };
}

describe(`mutation fuzz of the readers (${CASES} cases per format)`, () => {
  it("every mutated input is read or refused with a typed error", async () => {
    const inputs = await seeds();
    const started = Date.now();
    const outcomes: Record<string, { ok: number; refused: number; codes: Set<string> }> = {};
    let peakRss = 0;
    for (const [format, seed] of Object.entries(inputs)) {
      const read = readers[format] as Reader;
      await read(seed);
      const tally = { ok: 0, refused: 0, codes: new Set<string>() };
      const random = rng(0x5eed + format.length);
      for (let i = 0; i < CASES && Date.now() - started < TIME_BUDGET_MS; i++) {
        const input = mutate(seed, random);
        try {
          await read(input);
          tally.ok++;
        } catch (error) {
          if (!(error instanceof ConvertError)) {
            throw new Error(`${format} case ${i}: not a typed error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
          }
          tally.refused++;
          tally.codes.add(error.code);
        }
        if (i % 100 === 0) {
          peakRss = Math.max(peakRss, process.memoryUsage().rss);
        }
      }
      outcomes[format] = tally;
    }
    expect(peakRss).toBeLessThan(RSS_BOUND);
    for (const [format, tally] of Object.entries(outcomes)) {
      expect(tally.refused, format).toBeGreaterThan(0);
      expect(tally.codes.size, format).toBeGreaterThan(format === "index" ? 0 : 2);
    }
    console.log(
      Object.entries(outcomes)
        .map(([f, t]) => `${f}: ${t.ok} read, ${t.refused} refused (${[...t.codes].sort().join(", ")})`)
        .join("\n"),
      `\npeak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB, ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  });
});
