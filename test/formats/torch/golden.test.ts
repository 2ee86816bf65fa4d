import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { writeTorchCheckpoint } from "../../../src/formats/torch/checkpoint-writer.js";
import { pickle } from "../../../src/formats/torch/pickle/pickler.js";
import { PyDict, PyFloat, PyNamespace, PyOrderedDict, TensorOut } from "../../../src/formats/torch/pickle/values.js";
import { runPython } from "../../support/python.js";
import { makeTempDir } from "../../support/tmpdir.js";
import { encodeValues, storageOf, tensorOf } from "../../support/torch-builders.js";

/** Runs `code` with torch; prints the hex of data.pkl of the file it saved at sys.argv[1]. */
function torchDataPkl(code: string, path: string): string {
  const script = `import sys, torch, argparse, collections, zipfile\n${code}\nz = zipfile.ZipFile(sys.argv[1])\nprint(z.read(z.namelist()[0]).hex())`;
  return runPython(script, [path]).trim();
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

describe("golden bytes against real torch.save (torch-format.md 1.6, 2.3)", () => {
  test("(a) OrderedDict of two bf16 tensors, prefix case_a, 1.13 record set: the whole file is identical", async () => {
    const dir = await makeTempDir();
    const root = new PyOrderedDict().set("a", tensorOf("BF16", [2], [1, 2])).set("b", tensorOf("BF16", [2, 2], [3, 4, 5, 6]));
    const ours = join(dir, "ours", "case_a.pt");
    await mkdir(join(dir, "ours"));
    const { bytes } = await writeTorchCheckpoint(ours, root, { recordSet: "torch1.13" });
    const theirs = join(dir, "case_a.pt");
    runPython(
      "import sys, torch, collections\n" +
        "torch.save(collections.OrderedDict(a=torch.tensor([1, 2], dtype=torch.bfloat16), b=torch.tensor([[3, 4], [5, 6]], dtype=torch.bfloat16)), sys.argv[1])",
      [theirs],
    );
    const [a, b] = await Promise.all([readFile(ours), readFile(theirs)]);
    expect(bytes).toBe(a.byteLength);
    expect(hex(a)).toBe(hex(b));
    // the annotated offsets of torch-format.md 1.6
    expect(a.byteLength).toBe(0x3e3);
    expect(hex(a.subarray(0x40, 0x42))).toBe("8002");
    expect(hex(a.subarray(0x126, 0x136))).toBe("504b0708433c130ce6000000e6000000");
    expect(hex(a.subarray(0x3cd))).toBe("504b05060000000004000400ef000000920200000000");
  });

  test("(b) Megatron-like dict with Namespace args: data.pkl is identical", async () => {
    const dir = await makeTempDir();
    const args = new PyDict()
      .set("num_layers", 2)
      .set("hidden_size", 8)
      .set("lr", new PyFloat(1.5e-4))
      .set("fp16", false)
      .set("bf16", true)
      .set("tokenizer_type", "GPT2BPETokenizer")
      .set("seq_length", null);
    const model = new PyOrderedDict().set("w", tensorOf("F16", [2], [1, 2])).set("layer._extra_state", null);
    const root = new PyDict().set("args", new PyNamespace(args)).set("checkpoint_version", new PyFloat(3)).set("iteration", 0).set("model", model);
    const theirs = torchDataPkl(
      "args = argparse.Namespace(num_layers=2, hidden_size=8, lr=1.5e-4, fp16=False, bf16=True, tokenizer_type='GPT2BPETokenizer', seq_length=None)\n" +
        "model = collections.OrderedDict([('w', torch.tensor([1, 2], dtype=torch.float16)), ('layer._extra_state', None)])\n" +
        "torch.save({'args': args, 'checkpoint_version': 3.0, 'iteration': 0, 'model': model}, sys.argv[1])",
      join(dir, "b.pt"),
    );
    expect(hex(pickle(root, "b.pt").bytes)).toBe(theirs);
    expect(theirs.length / 2).toBe(446);
  });

  test("(c) two views of one float32 storage: data.pkl is identical and the storage is written once", async () => {
    const dir = await makeTempDir();
    const base = storageOf("F32", 12, encodeValues("F32", Array.from({ length: 12 }, (_, i) => i)));
    const root = [new TensorOut(base, [2, 3], [3, 1], 2), new TensorOut(base, [4], [3], 0)];
    const theirs = torchDataPkl("base = torch.arange(12, dtype=torch.float32)\ntorch.save([base[2:8].view(2, 3), base[::3]], sys.argv[1])", join(dir, "c.pt"));
    const ours = pickle(root, "c.pt");
    expect(hex(ours.bytes)).toBe(theirs);
    expect(ours.storages.map((s) => s.key)).toEqual(["0"]);
  });

  test("(d) 0-dim and transposed tensors: data.pkl is identical", async () => {
    const dir = await makeTempDir();
    const nc = storageOf("I64", 6, encodeValues("I64", [0, 1, 2, 3, 4, 5]));
    const root = new PyDict().set("scalar", tensorOf("F32", [], [7.5])).set("nc", new TensorOut(nc, [3, 2], [1, 3]));
    const theirs = torchDataPkl("torch.save({'scalar': torch.tensor(7.5), 'nc': torch.arange(6).view(2, 3).t()}, sys.argv[1])", join(dir, "d.pt"));
    expect(hex(pickle(root, "d.pt").bytes)).toBe(theirs);
  });

  test("(e) 1200 tensors (memo > 255, > 1000 dict items, lexicographic storage order): the whole file is identical", async () => {
    const dir = await makeTempDir();
    const root = new PyOrderedDict();
    for (let i = 0; i < 1200; i += 1) {
      root.set(`layers.${i}.weight`, tensorOf("BF16", [2], [i % 7, 1]));
    }
    const ours = join(dir, "ours", "many.pt");
    await mkdir(join(dir, "ours"));
    await writeTorchCheckpoint(ours, root, { recordSet: "torch1.13" });
    const theirs = join(dir, "many.pt");
    runPython(
      "import sys, torch, collections\n" +
        "torch.save(collections.OrderedDict((f'layers.{i}.weight', torch.tensor([i % 7, 1], dtype=torch.bfloat16)) for i in range(1200)), sys.argv[1])",
      [theirs],
    );
    const [a, b] = await Promise.all([readFile(ours), readFile(theirs)]);
    expect(a.equals(b)).toBe(true);
  });
});
