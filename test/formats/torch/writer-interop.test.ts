import { stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { writeTorchCheckpoint } from "../../../src/formats/torch/checkpoint-writer.js";
import { PyBytes, PyDict, PyFloat, PyGlobal, PyNamespace, PyOrderedDict, PyTuple, TensorOut, type PyValue } from "../../../src/formats/torch/pickle/values.js";
import type { Dtype } from "../../../src/model/tensor.js";
import { runPython } from "../../support/python.js";
import { makeTempDir } from "../../support/tmpdir.js";
import { TORCH_NAMES, encodeValues, sampleValues, storageOf, tensorOf } from "../../support/torch-builders.js";

const DTYPES = Object.keys(TORCH_NAMES) as Dtype[];

/** Loads a file with real torch and prints {key: [dtype, shape, flat values]} of an OrderedDict of tensors. */
const DESCRIBE_TENSORS = `
import sys, json, torch
d = torch.load(sys.argv[1], weights_only=(sys.argv[2] == "1"))
out = {k: [str(t.dtype), list(t.shape), [float(x) for x in t.flatten().tolist()]] for k, t in d.items() if torch.is_tensor(t)}
out["__shared__"] = d["view_a"].storage().data_ptr() == d["view_b"].storage().data_ptr()
print(json.dumps(out))
`;

function tensorsRoot(): { root: PyOrderedDict; expected: Record<string, [string, number[], number[]]> } {
  const root = new PyOrderedDict();
  const expected: Record<string, [string, number[], number[]]> = {};
  for (const dtype of DTYPES) {
    const name = `torch.${TORCH_NAMES[dtype] ?? ""}`;
    const values = sampleValues(dtype, 6);
    root.set(dtype, tensorOf(dtype, [2, 3], values));
    root.set(`${dtype}_scalar`, tensorOf(dtype, [], [values[1] ?? 0]));
    root.set(`${dtype}_empty`, tensorOf(dtype, [0, 3], []));
    expected[dtype] = [name, [2, 3], values];
    expected[`${dtype}_scalar`] = [name, [], [values[1] ?? 0]];
    expected[`${dtype}_empty`] = [name, [0, 3], []];
  }
  const base = storageOf("F32", 12, encodeValues("F32", Array.from({ length: 12 }, (_, i) => i)));
  root.set("view_a", new TensorOut(base, [2, 3], [3, 1], 2));
  root.set("view_b", new TensorOut(base, [4], [3], 0));
  root.set("view_t", new TensorOut(base, [3, 2], [1, 3], 0));
  expected["view_a"] = ["torch.float32", [2, 3], [2, 3, 4, 5, 6, 7]];
  expected["view_b"] = ["torch.float32", [4], [0, 3, 6, 9]];
  expected["view_t"] = ["torch.float32", [3, 2], [0, 3, 1, 4, 2, 5]];
  return { root, expected };
}

describe("our writer -> real torch.load (torch 1.13)", () => {
  test("every 1.13 dtype, 0-dim, empty and views sharing a storage, with weights_only False and True", async () => {
    const dir = await makeTempDir();
    const { root, expected } = tensorsRoot();
    const path = join(dir, "tensors.pt");
    await writeTorchCheckpoint(path, root);
    for (const weightsOnly of ["0", "1"]) {
      const loaded = JSON.parse(runPython(DESCRIBE_TENSORS, [path, weightsOnly])) as Record<string, unknown>;
      expect(loaded["__shared__"]).toBe(true);
      delete loaded["__shared__"];
      expect(loaded).toEqual(expected);
    }
  });

  test("the 1.13 record set and forced zip64 extras load in torch and pass zipfile.testzip()", async () => {
    const dir = await makeTempDir();
    const { root, expected } = tensorsRoot();
    for (const [file, options] of [
      ["z64.pt", { forceZip64: true }],
      ["old.pt", { recordSet: "torch1.13" as const }],
    ] as const) {
      const path = join(dir, file);
      await writeTorchCheckpoint(path, root, options);
      const loaded = JSON.parse(runPython(DESCRIBE_TENSORS, [path, "1"])) as Record<string, unknown>;
      delete loaded["__shared__"];
      expect(loaded).toEqual(expected);
      expect(runPython("import sys, zipfile\nprint(zipfile.ZipFile(sys.argv[1]).testzip())", [path]).trim()).toBe("None");
    }
  });

  test("a Megatron-shaped dict with Namespace args, > 256 memo entries and > 1000 model entries", async () => {
    const dir = await makeTempDir();
    const args = new PyDict()
      .set("num_layers", 2)
      .set("hidden_size", 4096)
      .set("lr", new PyFloat(3e-4))
      .set("norm_epsilon", new PyFloat(1e-5))
      .set("tokenizer_type", "Llama2Tokenizer")
      .set("bf16", true)
      .set("fp16", false)
      .set("seq_length", null)
      .set("ids", [1, -2, 70000, -70000, 2 ** 40, -(2 ** 40), 2n ** 70n, -(2n ** 70n)])
      .set("pair", new PyTuple([1, "x"]))
      .set("params_dtype", new PyGlobal("torch", "bfloat16"))
      .set("blob", new PyBytes(Uint8Array.from([0, 1, 255, 128])))
      .set("empty_blob", new PyBytes(new Uint8Array(0)))
      .set("unicode", "ü∑😀");
    const model = new PyOrderedDict();
    for (let i = 0; i < 1200; i += 1) {
      model.set(`layer.${i}.weight`, tensorOf("BF16", [2], [i % 100, -(i % 50)]));
      model.set(`layer.${i}._extra_state`, null);
    }
    const root = new PyDict().set("args", new PyNamespace(args)).set("checkpoint_version", new PyFloat(3)).set("iteration", 0).set("model", model);
    const path = join(dir, "model_optim_rng.pt");
    await writeTorchCheckpoint(path, root);
    const script = `
import sys, json, torch, argparse
d = torch.load(sys.argv[1], weights_only=False)
a = d["args"]
m = d["model"]
print(json.dumps({
  "type": type(a).__name__, "args": {k: (str(v) if isinstance(v, (list, torch.dtype, bytes, tuple)) else v) for k, v in vars(a).items()},
  "checkpoint_version": [type(d["checkpoint_version"]).__name__, d["checkpoint_version"]], "iteration": d["iteration"],
  "model_type": type(m).__name__, "n": len(m), "keys_in_order": list(m.keys())[:4],
  "w1199": m["layer.1199.weight"].tolist(), "extra": m["layer.7._extra_state"], "dtype": str(m["layer.0.weight"].dtype),
}))`;
    const loaded = JSON.parse(runPython(script, [path])) as Record<string, unknown>;
    expect(loaded).toEqual({
      type: "Namespace",
      args: {
        num_layers: 2,
        hidden_size: 4096,
        lr: 3e-4,
        norm_epsilon: 1e-5,
        tokenizer_type: "Llama2Tokenizer",
        bf16: true,
        fp16: false,
        seq_length: null,
        ids: `[1, -2, 70000, -70000, ${2 ** 40}, ${-(2 ** 40)}, ${2n ** 70n}, ${-(2n ** 70n)}]`,
        pair: "(1, 'x')",
        params_dtype: "torch.bfloat16",
        blob: "b'\\x00\\x01\\xff\\x80'",
        empty_blob: "b''",
        unicode: "ü∑😀",
      },
      checkpoint_version: ["float", 3],
      iteration: 0,
      model_type: "OrderedDict",
      n: 2400,
      keys_in_order: ["layer.0.weight", "layer.0._extra_state", "layer.1.weight", "layer.1._extra_state"],
      w1199: [99, -49],
      extra: null,
      dtype: "torch.bfloat16",
    });
  });

  test("a storage that yields a wrong byte count fails with its key and leaves no file", async () => {
    const dir = await makeTempDir();
    const path = join(dir, "short.pt");
    const short = new TensorOut(storageOf("F32", 4, new Uint8Array(12)), [4]);
    const error = await writeTorchCheckpoint(path, new PyOrderedDict().set("w", short)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "torch.storage-byte-count", key: "0", expected: 16, found: 12 });
    const long = new TensorOut(storageOf("F32", 1, new Uint8Array(8), 3), [1]);
    const error2 = await writeTorchCheckpoint(path, new PyOrderedDict().set("w", long)).catch((e: unknown) => e);
    expect(error2).toMatchObject({ code: "torch.storage-byte-count", key: "0", expected: 4 });
    await expect(stat(path)).rejects.toThrow();
  });

  test("refuses an existing file, fractional numbers, a view past its storage and a bad prefix", async () => {
    const dir = await makeTempDir();
    const path = join(dir, "x.pt");
    await writeTorchCheckpoint(path, 1);
    await expect(writeTorchCheckpoint(path, 1)).rejects.toMatchObject({ code: "io.access" });
    const cases: Array<[PyValue, string]> = [
      [1.5, "torch.unpicklable-value"],
      [new TensorOut(storageOf("F32", 4, new Uint8Array(16)), [2, 2], [2, 1], 1), "torch.bad-tensor"],
      [new TensorOut(storageOf("F32", 4, new Uint8Array(16)), [2, 2], [1]), "torch.bad-tensor"],
    ];
    for (const [value, code] of cases) {
      await expect(writeTorchCheckpoint(join(dir, "y.pt"), value)).rejects.toMatchObject({ code });
    }
    await expect(writeTorchCheckpoint(join(dir, "z.pt"), 1, { prefix: "a/b" })).rejects.toMatchObject({ code: "torch.bad-layout" });
  });
});
