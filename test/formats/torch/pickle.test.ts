import { describe, expect, test } from "vitest";
import { pickle } from "../../../src/formats/torch/pickle/pickler.js";
import { unpickle } from "../../../src/formats/torch/pickle/unpickler.js";
import { decodeLong, encodeLong } from "../../../src/formats/torch/pickle/longs.js";
import { PyBytes, PyDict, PyFloat, PyGlobal, PyNamespace, PyObject, PyOrderedDict, PyTuple, TensorRef, type PyValue } from "../../../src/formats/torch/pickle/values.js";
import { runPython } from "../../support/python.js";

/** A JSON-able view of a value, to compare structures (and Python's repr-ish output). */
function plain(value: PyValue): unknown {
  if (value === null || typeof value === "boolean" || typeof value === "number" || typeof value === "string") {
    return value;
  }
  if (typeof value === "bigint") {
    return `${value}n`;
  }
  if (value instanceof PyFloat) {
    return { float: Number.isNaN(value.value) ? "nan" : Object.is(value.value, -0) ? "-0" : String(value.value) };
  }
  if (Array.isArray(value)) {
    return value.map(plain);
  }
  if (value instanceof PyTuple) {
    return { tuple: value.items.map(plain) };
  }
  if (value instanceof PyDict) {
    return { [value instanceof PyOrderedDict ? "odict" : "dict"]: value.entries.map(([k, v]) => [plain(k), plain(v)]) };
  }
  if (value instanceof PyNamespace) {
    return { namespace: plain(value.attrs) };
  }
  if (value instanceof PyGlobal) {
    return { global: value.qualifiedName };
  }
  if (value instanceof PyBytes) {
    return { bytes: Buffer.from(value.bytes).toString("hex") };
  }
  if (value instanceof PyObject) {
    return { object: `${value.module}.${value.name}`, args: plain(value.args), state: plain(value.state) };
  }
  if (value instanceof TensorRef) {
    return { tensor: value.storage.key };
  }
  return { other: String(value) };
}

/**
 * No string value repeats: CPython memoizes strings by identity, so an interned literal that
 * occurs twice becomes a BINGET, which torch.save's dynamically built keys never are.
 */
const SAMPLE: PyValue = new PyDict()
  .set("ints", [0, 1, 255, 256, 65535, 65536, -1, -256, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 53 - 1, -(2 ** 53) + 1, 2n ** 64n, -(2n ** 64n), 2n ** 2100n])
  .set("floats", [new PyFloat(1.5), new PyFloat(-0), new PyFloat(Infinity), new PyFloat(-Infinity), new PyFloat(NaN), new PyFloat(1e-300)])
  .set("strings", ["", "s", "ü∑😀", "x".repeat(300), "line\nbreak"])
  .set("bytes", [new PyBytes(Uint8Array.from([0, 0x80, 0xff])), new PyBytes(new Uint8Array(0))])
  .set("tuples", [new PyTuple([]), new PyTuple([1]), new PyTuple([1, 2]), new PyTuple([1, 2, 3]), new PyTuple([1, 2, 3, 4, 5])])
  .set("nested", new PyOrderedDict().set("a", [null, true, false, new PyDict().set(1, "one")]))
  .set("long_list", Array.from({ length: 2500 }, (_, i) => i))
  .set("dtype", new PyGlobal("torch", "float32"))
  .set(7, "int key");

const PY_SAMPLE = `{
  "ints": [0, 1, 255, 256, 65535, 65536, -1, -256, 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**53 - 1, -2**53 + 1, 2**64, -2**64, 2**2100],
  "floats": [1.5, -0.0, float("inf"), float("-inf"), float("nan"), 1e-300],
  "strings": ["", "s", "ü∑😀", "x" * 300, "line\\nbreak"],
  "bytes": [b"\\x00\\x80\\xff", b""],
  "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4, 5)],
  "nested": collections.OrderedDict(a=[None, True, False, {1: "one"}]),
  "long_list": list(range(2500)),
  "dtype": torch.float32,
  7: "int key",
}`;

describe("pickler", () => {
  test("is byte-identical to CPython's pickle.dumps(protocol=2) for plain values", () => {
    const theirs = runPython(`import sys, collections, pickle, torch\nprint(pickle.dumps(${PY_SAMPLE}, protocol=2).hex())`).trim();
    expect(Buffer.from(pickle(SAMPLE, "sample").bytes).toString("hex")).toBe(theirs);
  });

  test("memoizes objects by identity (a shared list is pickled once, then BINGET)", () => {
    const shared = [1, 2];
    const twice = unpickle(pickle([shared, shared], "s").bytes, { file: "s" });
    expect(Array.isArray(twice) && twice[0] === twice[1]).toBe(true);
  });

  test("refuses fractional numbers, NaN as int, TensorRefs and a non-tuple PyObject args", () => {
    for (const bad of [1.5, NaN, new PyObject("m", "n", [1], null)]) {
      expect(() => pickle(bad, "f.pt")).toThrow(expect.objectContaining({ code: "torch.unpicklable-value" }) as Error);
    }
  });

  test("LONG encoding round-trips at the byte boundaries", () => {
    for (const v of [0n, 1n, -1n, 127n, 128n, -128n, -129n, 255n, 256n, 2n ** 63n, -(2n ** 63n), 2n ** 64n - 1n, -(2n ** 200n)]) {
      expect(decodeLong(encodeLong(v))).toBe(v);
    }
    expect(Buffer.from(encodeLong(-128n)).toString("hex")).toBe("80");
    expect(Buffer.from(encodeLong(128n)).toString("hex")).toBe("8000");
    expect(Buffer.from(encodeLong(-256n)).toString("hex")).toBe("00ff");
  });
});

describe("unpickler", () => {
  test("reads back what the pickler writes, objects included", () => {
    const ns = new PyNamespace(new PyDict().set("lr", new PyFloat(0.1)).set("name", "x"));
    const obj = new PyObject("megatron.core.enums", "ModelType", new PyTuple([1]), null);
    const withState = new PyObject("_io", "BytesIO", new PyTuple([]), new PyTuple([new PyBytes(Uint8Array.from([1, 2])), 0, null]));
    const value = new PyDict().set("sample", SAMPLE).set("ns", ns).set("enum", obj).set("io", withState);
    const back = unpickle(pickle(value, "rt").bytes, { file: "rt" });
    expect(plain(back)).toEqual(plain(value));
  });

  for (const protocol of [0, 1, 2, 3, 4, 5]) {
    test(`reads CPython protocol ${protocol} (text opcodes, frames, short strings, sets, bytearray ...)`, () => {
      const code =
        "import sys, collections, pickle, torch\n" +
        `obj = {"sample": ${PY_SAMPLE}, "set": {3}, "frozen": frozenset(), "ba": bytearray(b"z"), "s": "it's \\"q\\" \\\\ \\u20ac", "f": 0.1, "neg": -7, "big": -2**70}\n` +
        `obj["shared"] = [obj["sample"]["tuples"], obj["sample"]["tuples"]]\n` +
        `print(pickle.dumps(obj, protocol=${protocol}).hex())`;
      const bytes = Buffer.from(runPython(code).trim(), "hex");
      const back = unpickle(bytes, { file: `p${protocol}` });
      const root = back instanceof PyDict ? back : new PyDict();
      expect(plain(root.get("sample") ?? null)).toEqual(plain(SAMPLE));
      expect(plain(root.get("set") ?? null)).toEqual({ object: "builtins.set", args: { tuple: [[3]] }, state: null });
      expect(plain(root.get("frozen") ?? null)).toEqual({ object: "builtins.frozenset", args: { tuple: [[]] }, state: null });
      expect(plain(root.get("ba") ?? null)).toEqual({ bytes: "7a" });
      expect(root.get("s")).toBe('it\'s "q" \\ €');
      expect(root.get("f")).toEqual(new PyFloat(0.1));
      expect(root.get("neg")).toBe(-7);
      expect(root.get("big")).toBe(-(2n ** 70n));
    });
  }
});
