import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { FileSource } from "../../../src/formats/io/file-source.js";
import { readTensorBytes, readTorchCheckpoint, type ReadTorchCheckpointOptions, type TorchCheckpoint } from "../../../src/formats/torch/checkpoint-reader.js";
import { writeTorchCheckpoint } from "../../../src/formats/torch/checkpoint-writer.js";
import { pickle } from "../../../src/formats/torch/pickle/pickler.js";
import { PyDict, PyGlobal, PyNamespace, PyOrderedDict, PyTuple, TensorOut, TensorRef, type PyValue } from "../../../src/formats/torch/pickle/values.js";
import { SeenPickles } from "../../../src/formats/torch/seen-pickles.js";
import { makeTempDir } from "../../support/tmpdir.js";
import { ascii, encodeValues, memorySource, storageOf, tensorOf, zipInMemory } from "../../support/torch-builders.js";

/**
 * A rank-file-like root whose tensors hold `fill`-derived values: the same structure (so the
 * same data.pkl) for every fill. One storage is shared by two keys and seen through a strided
 * view; U16 has no legacy storage class, so it is rebuilt by _rebuild_tensor_v3.
 */
function root(fill: number): PyOrderedDict {
  const values = (n: number) => Array.from({ length: n }, (_, i) => fill * 100 + i);
  const shared = storageOf("F32", 6, encodeValues("F32", values(6)));
  const model = new PyOrderedDict()
    .set("a.weight", new TensorOut(shared, [2, 3]))
    .set("a.weight_t", new TensorOut(shared, [3, 2], [1, 3]))
    .set("b.weight", tensorOf("BF16", [4], values(4)))
    .set("c.weight", new TensorOut(storageOf("U16", 4, u16Bytes(values(4))), [2, 2]))
    .set("c._extra_state", null);
  const args = new PyNamespace(new PyDict().set("tensor_model_parallel_size", 4).set("params_dtype", new PyGlobal("torch", "bfloat16")));
  return new PyOrderedDict().set("args", args).set("model", model).set("shape", new PyTuple([1, 2, [3, 4]]));
}

const u16Bytes = (values: readonly number[]): Uint8Array => new Uint8Array(Uint16Array.from(values).buffer);

async function read(path: string, options: ReadTorchCheckpointOptions): Promise<{ checkpoint: TorchCheckpoint; source: FileSource }> {
  const source = await FileSource.open(path);
  return { checkpoint: await readTorchCheckpoint(source, options), source };
}

function tensorsOf(value: PyValue): TensorRef[] {
  const model = value instanceof PyDict ? value.get("model") : undefined;
  return model instanceof PyDict ? model.entries.map(([, t]) => t).filter((t): t is TensorRef => t instanceof TensorRef) : [];
}

describe("SeenPickles: a rank file whose data.pkl was read before is copied, not unpickled again", () => {
  test("the copy equals a fresh read of the second archive: its own storage records, its own bytes, its own containers", async () => {
    const dir = await makeTempDir();
    const [pathA, pathB] = [join(dir, "a.pt"), join(dir, "b.pt")];
    await writeTorchCheckpoint(pathA, root(1), {});
    // the other record set moves every storage record: a copy that kept a's offsets would read the wrong bytes
    await writeTorchCheckpoint(pathB, root(2), { recordSet: "torch1.13", prefix: "a" });
    const seen = new SeenPickles();
    const a = await read(pathA, { seen });
    const b = await read(pathB, { seen });
    const fresh = await read(pathB, {});
    try {
      expect(pickle(root(1), "x").bytes).toEqual(pickle(root(2), "x").bytes);
      expect(b.checkpoint.records.get("data/1")?.offset).not.toBe(a.checkpoint.records.get("data/1")?.offset);
      expect(b.checkpoint.root).toStrictEqual(fresh.checkpoint.root);
      const [shared, sharedT, bf16, u16] = tensorsOf(b.checkpoint.root);
      expect(shared?.storage).toBe(sharedT?.storage);
      expect(u16?.dtype).toBe("U16");
      for (const [tensor, values] of [
        [shared, encodeValues("F32", [200, 201, 202, 203, 204, 205])],
        [sharedT, encodeValues("F32", [200, 203, 201, 204, 202, 205])],
        [bf16, encodeValues("BF16", [200, 201, 202, 203])],
        [u16, u16Bytes([200, 201, 202, 203])],
      ] as const) {
        expect(tensor?.storage.file).toBe(pathB);
        expect(await readTensorBytes(b.source, tensor as TensorRef)).toEqual(values);
      }
      // a's tree is not b's: changing one leaves the other as read
      (b.checkpoint.root as PyDict).set("iteration", 7);
      expect((a.checkpoint.root as PyDict).has("iteration")).toBe(false);
      expect(tensorsOf(a.checkpoint.root).every((t) => t.storage.file === pathA)).toBe(true);
    } finally {
      await Promise.all([a.source.close(), b.source.close(), fresh.source.close()]);
    }
  });

  test("the second archive's storage records are still checked: a wrong size or a missing record names it", async () => {
    const pkl = pickle(new PyOrderedDict().set("w", tensorOf("F32", [2], [1, 2])), "x").bytes;
    const good = await zipInMemory([
      ["x/data.pkl", pkl],
      ["x/data/0", encodeValues("F32", [1, 2])],
      ["x/version", ascii("3\n")],
    ]);
    const short = await zipInMemory([
      ["x/data.pkl", pkl],
      ["x/data/0", encodeValues("F32", [1])],
      ["x/version", ascii("3\n")],
    ]);
    const missing = await zipInMemory([
      ["x/data.pkl", pkl],
      ["x/version", ascii("3\n")],
    ]);
    const seen = new SeenPickles();
    await readTorchCheckpoint(memorySource(good, "good.pt"), { seen });
    await expect(readTorchCheckpoint(memorySource(short, "short.pt"), { seen })).rejects.toMatchObject({ code: "torch.storage-size-mismatch", file: "short.pt" });
    await expect(readTorchCheckpoint(memorySource(missing, "missing.pt"), { seen })).rejects.toMatchObject({ code: "torch.missing-record", record: "x/data/0" });
  });

  test("a pickle is copied only under the limits it was read with", async () => {
    const dir = await makeTempDir();
    const path = join(dir, "a.pt");
    await writeTorchCheckpoint(path, root(1), {});
    const seen = new SeenPickles();
    await read(path, { seen }).then(({ source }) => source.close());
    const source = await FileSource.open(path);
    try {
      await expect(readTorchCheckpoint(source, { seen, limits: { maxObjects: 5 } })).rejects.toMatchObject({ code: "torch.pickle-limit" });
    } finally {
      await source.close();
    }
  });
});
