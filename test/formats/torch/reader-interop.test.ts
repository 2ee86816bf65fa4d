import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { FileSource } from "../../../src/formats/io/file-source.js";
import { readTensorBytes, readTorchCheckpoint, readTorchCheckpointFile } from "../../../src/formats/torch/checkpoint-reader.js";
import { PyBytes, PyDict, PyFloat, PyGlobal, PyNamespace, PyObject, PyOrderedDict, PyTuple, TensorRef, type PyValue } from "../../../src/formats/torch/pickle/values.js";
import { runPython } from "../../support/python.js";
import { makeTempDir } from "../../support/tmpdir.js";

const SAVE_TENSORS = `
import sys, json, torch
torch.manual_seed(0)
d = {}
for name in ["bfloat16", "float16", "float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"]:
    dt = getattr(torch, name)
    base = (torch.randn(4, 5) * 50)
    t = base.to(dt) if name != "bool" else base > 0
    d[name] = t
    d[name + "_scalar"] = t[1, 2].clone()
    d[name + "_empty"] = torch.empty(0, 3, dtype=dt)
    d[name + "_t"] = t.t()
    d[name + "_cols"] = t[1:, 1:4]
base = torch.arange(12, dtype=torch.float32)
d["view_a"] = base[2:8].view(2, 3)
d["view_b"] = base[::3]
d["expanded"] = torch.tensor([1.0, 2.0]).expand(3, 2)
torch.save(d, sys.argv[1])
def raw(t):
    return t.contiguous().flatten().view(torch.uint8).numpy().tobytes().hex()
print(json.dumps({k: [str(t.dtype).replace("torch.", ""), list(t.shape), raw(t)] for k, t in d.items()}))
`;

const SAVE_MEGATRON = `
import sys, io, json, pickle, random, enum, types, argparse, collections, torch
try:
    import numpy as np
except ImportError:
    np = None
for mod in ["megatron", "megatron.core", "megatron.core.transformer", "megatron.core.transformer.enums"]:
    sys.modules[mod] = types.ModuleType(mod)
class AttnBackend(enum.Enum):
    flash = 1
    auto = 5
AttnBackend.__module__ = "megatron.core.transformer.enums"
sys.modules["megatron.core.transformer.enums"].AttnBackend = AttnBackend
torch.manual_seed(0)
random.seed(0)
if np is not None:
    np.random.seed(0)
te_old = io.BytesIO()
torch.save(None, te_old)
args = argparse.Namespace(num_layers=2, hidden_size=8, lr=1.5e-4, bf16=True, seq_length=None, tokenizer_type="x",
                          params_dtype=torch.bfloat16, attention_backend=AttnBackend.auto, device=torch.device("cpu"),
                          ranks={1, 2}, big=2 ** 70)
linear = torch.nn.Linear(2, 3)
model = collections.OrderedDict()
model["w"] = torch.arange(6, dtype=torch.bfloat16).view(2, 3)
model["a._extra_state"] = None
model["b._extra_state"] = te_old
model["c._extra_state"] = torch.frombuffer(bytearray(pickle.dumps(None)), dtype=torch.uint8)
model["d._extra_state"] = torch.empty(0, dtype=torch.uint8)
model["p"] = torch.nn.Parameter(torch.ones(2))
state = {
    "args": args, "checkpoint_version": 3.0, "iteration": 10, "model": model,
    "linear": linear.state_dict(),
    "rng_state": [{"random_rng_state": random.getstate(), "torch_rng_state": torch.get_rng_state(), "cuda_rng_state": None}],
    "optimizer": {"state": {0: {"step": 3, "exp_avg": torch.zeros(2)}}, "param_groups": [{"lr": 0.1, "params": [0]}]},
}
if np is not None:
    state["rng_state"][0].update(np_rng_state=np.random.get_state(), np_scalar=np.float64(1.5))
torch.save(state, sys.argv[1])
print(json.dumps({"bytesio": len(te_old.getvalue()), "numpy": np is not None}))
`;

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

function dict(value: PyValue | undefined): PyDict {
  if (!(value instanceof PyDict)) {
    throw new Error(`expected a dict, got ${String(value)}`);
  }
  return value;
}

describe("real torch.save (1.13) -> our reader", () => {
  test("every dtype, 0-dim, empty, shared, transposed, sliced and expanded tensors read back as torch's .contiguous() bytes", async () => {
    const dir = await makeTempDir();
    const path = join(dir, "tensors.pt");
    const expected = JSON.parse(runPython(SAVE_TENSORS, [path])) as Record<string, [string, number[], string]>;
    const source = await FileSource.open(path);
    try {
      const ck = await readTorchCheckpoint(source);
      expect(ck.prefix).toBe("tensors");
      const root = dict(ck.root);
      expect(root.keys()).toEqual(Object.keys(expected));
      for (const [key, [, shape, bytes]] of Object.entries(expected)) {
        const t = root.get(key);
        expect(t, key).toBeInstanceOf(TensorRef);
        if (t instanceof TensorRef) {
          expect(t.shape, key).toEqual(shape);
          expect(hex(await readTensorBytes(source, t)), key).toBe(bytes);
        }
      }
      const a = root.get("view_a");
      const b = root.get("view_b");
      expect(a instanceof TensorRef && b instanceof TensorRef && a.storage.key === b.storage.key).toBe(true);
      const bf = root.get("bfloat16");
      expect(bf instanceof TensorRef && bf.dtype).toBe("BF16");
      expect(bf instanceof TensorRef && bf.isContiguous).toBe(true);
      const tr = root.get("bfloat16_t");
      expect(tr instanceof TensorRef && tr.isContiguous).toBe(false);
      expect(ck.records.get("data.pkl")?.offset).toBe(64);
    } finally {
      await source.close();
    }
  });

  test("a Megatron-like dict: Namespace args, enums, BytesIO / uint8 / empty extra states, numpy rng state, Parameter", async () => {
    const dir = await makeTempDir();
    const path = join(dir, "model_optim_rng.pt");
    const saved = JSON.parse(runPython(SAVE_MEGATRON, [path])) as { bytesio: number; numpy: boolean };
    const ck = await readTorchCheckpointFile(path);
    const root = dict(ck.root);
    const args = root.get("args");
    expect(args).toBeInstanceOf(PyNamespace);
    if (!(args instanceof PyNamespace)) {
      return;
    }
    expect(args.attrs.get("num_layers")).toBe(2);
    expect(args.attrs.get("lr")).toEqual(new PyFloat(1.5e-4));
    expect(args.attrs.get("seq_length")).toBeNull();
    expect(args.attrs.get("params_dtype")).toEqual(new PyGlobal("torch", "bfloat16"));
    expect(args.attrs.get("big")).toBe(2n ** 70n);
    const backend = args.attrs.get("attention_backend");
    expect(backend).toBeInstanceOf(PyObject);
    // Python >= 3.11 pickles Enum members as getattr(cls, name); older ones as cls(value)
    const enumClass = new PyGlobal("megatron.core.transformer.enums", "AttnBackend");
    expect(backend instanceof PyObject && [backend.module, backend.name, backend.args]).toEqual(
      backend instanceof PyObject && backend.name === "getattr" ? ["builtins", "getattr", new PyTuple([enumClass, "auto"])] : [enumClass.module, enumClass.name, new PyTuple([5])],
    );
    expect(root.get("checkpoint_version")).toEqual(new PyFloat(3));
    expect(root.get("iteration")).toBe(10);
    const model = root.get("model");
    expect(model).toBeInstanceOf(PyOrderedDict);
    const m = dict(model);
    expect(m.get("a._extra_state")).toBeNull();
    const te = m.get("b._extra_state");
    expect(te instanceof PyObject && te.module === "_io" && te.name === "BytesIO").toBe(true);
    const teState = te instanceof PyObject ? te.state : null;
    expect(teState instanceof PyTuple && teState.items[0] instanceof PyBytes && teState.items[0].bytes.byteLength).toBe(saved.bytesio);
    expect(m.get("c._extra_state")).toBeInstanceOf(TensorRef);
    const empty = m.get("d._extra_state");
    expect(empty instanceof TensorRef && empty.shape).toEqual([0]);
    expect(m.get("p")).toBeInstanceOf(TensorRef);
    const rng = root.get("rng_state");
    const first = Array.isArray(rng) ? dict(rng[0]) : new PyDict();
    if (saved.numpy) {
      const np = first.get("np_rng_state");
      expect(np instanceof PyTuple && np.items[0]).toBe("MT19937");
      expect(np instanceof PyTuple && np.items[1] instanceof PyObject && np.items[1].name).toBe("_reconstruct");
      expect(first.get("np_scalar")).toBeInstanceOf(PyObject);
    }
    expect(first.get("random_rng_state")).toBeInstanceOf(PyTuple);
    expect(first.get("torch_rng_state")).toBeInstanceOf(TensorRef);
    expect(dict(root.get("linear")).keys()).toEqual(["weight", "bias"]);
    const w = m.get("w");
    const source = await FileSource.open(path);
    try {
      expect(w instanceof TensorRef && hex(await readTensorBytes(source, w))).toBe("0000803f004040408040a040");
    } finally {
      await source.close();
    }
  });
});
