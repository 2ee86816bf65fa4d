import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { readTorchCheckpoint } from "../../../src/formats/torch/checkpoint-reader.js";
import { unpickle } from "../../../src/formats/torch/pickle/unpickler.js";
import type { PickleLimits } from "../../../src/formats/torch/pickle/limits.js";
import { runPython } from "../../support/python.js";
import { makeTempDir } from "../../support/tmpdir.js";
import { ascii, memorySource, zipInMemory } from "../../support/torch-builders.js";

/** Pickle bytes from opcodes: numbers are bytes, strings latin-1, arrays raw bytes. */
function pk(...parts: Array<number | string | Uint8Array>): Uint8Array {
  return new Uint8Array(Buffer.concat(parts.map((p) => (typeof p === "number" ? Buffer.from([p]) : typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p)))));
}
const u32 = (n: number): Uint8Array => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n: bigint): Uint8Array => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};

interface Failure {
  code: string;
  message: string;
  position?: number;
  limit?: string;
  global?: string;
}

function failure(bytes: Uint8Array, limits?: Partial<PickleLimits>): Failure {
  const started = Date.now();
  try {
    unpickle(bytes, { file: "evil.pt", limits });
  } catch (error) {
    expect(Date.now() - started).toBeLessThan(5000);
    const f = error as Failure;
    expect(f.message).toContain("evil.pt");
    return f;
  }
  throw new Error("expected the unpickler to fail");
}

describe("forbidden globals: nothing is executed", () => {
  const marker = (dir: string): string => join(dir, "pwned");
  const payloads: Array<[string, string, RegExp]> = [
    ["os.system via REDUCE", "class P:\n  def __reduce__(self): return (os.system, ('touch ' + M,))", /^(posix|os)\.system$/],
    ["builtins.eval", "class P:\n  def __reduce__(self): return (eval, (\"__import__('os').system('touch ' + \" + repr(repr(M)) + \")\",))", /eval$/],
    ["subprocess.Popen", "class P:\n  def __reduce__(self): return (subprocess.Popen, (['touch', M],))", /^(subprocess|commands)\.Popen$/] /* protocol 2 maps it to its Python 2 name */,
    ["posix.system via STACK_GLOBAL (protocol 4)", "class P:\n  def __reduce__(self): return (posix.system, ('touch ' + M,))\nPROTO = 4", /^posix\.system$/],
  ];

  for (const [name, cls, global] of payloads) {
    test(`${name}: a typed error naming the global; the marker file is not created (but is by Python's pickle)`, async () => {
      const dir = await makeTempDir();
      const M = marker(dir);
      const hex = runPython(`import sys, os, posix, subprocess, pickle\nM = sys.argv[1]\nPROTO = 2\n${cls}\nprint(pickle.dumps({'model': P()}, protocol=PROTO).hex())`, [M]).trim();
      const bytes = Buffer.from(hex, "hex");
      const f = failure(bytes);
      expect(f.code).toBe("torch.pickle-forbidden-global");
      expect(f.global).toMatch(global);
      expect(f.message).toContain(f.global);
      expect(f.message).toMatch(/byte \d+/);
      expect(existsSync(M)).toBe(false);
      // the same payload inside a checkpoint: the error names the checkpoint file
      const archive = await zipInMemory([
        ["x/data.pkl", bytes],
        ["x/version", ascii("3\n")],
      ]);
      await expect(readTorchCheckpoint(memorySource(archive, "ckpt.pt"))).rejects.toMatchObject({ code: "torch.pickle-forbidden-global", file: "ckpt.pt" });
      expect(existsSync(M)).toBe(false);
      // proof that the payload is live: Python's own unpickler runs it
      runPython("import sys, pickle\npickle.loads(bytes.fromhex(sys.argv[1]))", [hex]);
      expect(existsSync(M)).toBe(true);
    });
  }

  test("the position is the GLOBAL opcode; INST, unknown torch functions and extension codes are refused too", () => {
    const f = failure(pk(0x80, 2, "cos\nsystem\n", "X", u32(2), "ls", 0x85, "R."));
    expect([f.code, f.global, f.position]).toEqual(["torch.pickle-forbidden-global", "os.system", 2]);
    expect(failure(pk("(S'ls'\nios\nsystem\n.")).global).toBe("os.system");
    expect(failure(pk(0x80, 2, "ctorch\nload\n)R.")).global).toBe("torch.load");
    expect(failure(pk(0x80, 2, "ctorch.serialization\n_load_from_bytes\n.")).global).toBe("torch.serialization._load_from_bytes");
    expect(failure(pk(0x80, 2, "c__builtin__\ngetattr\nctorch\nbfloat16\nX", u32(2), "xx", 0x86, "R.")).code).toBe("torch.pickle-malformed");
    expect(failure(pk(0x80, 2, 0x82, 1, ".")).code).toBe("torch.pickle-forbidden-global");
    expect(failure(pk(0x80, 2, "c__builtin__\ngetattr\n]", 0x86, "R.")).code).toBe("torch.pickle-malformed");
  });

  test("allowed value-only globals cannot be called", () => {
    expect(failure(pk(0x80, 2, "ctorch\nbfloat16\n)R.")).code).toBe("torch.pickle-malformed");
  });
});

describe("opcode bombs and malformed pickles fail fast with typed errors", () => {
  test("deep MARK nesting", () => {
    const f = failure(pk(0x80, 2, "(".repeat(100_000), "."));
    expect([f.code, f.limit]).toEqual(["torch.pickle-limit", "maxDepth"]);
  });

  test("deep list and tuple nesting", () => {
    const lists = failure(pk(0x80, 2, "]".repeat(50_000), "a".repeat(50_000), "."));
    expect([lists.code, lists.limit]).toEqual(["torch.pickle-limit", "maxDepth"]);
    const tuples = failure(pk(0x80, 2, ")", "\x85".repeat(50_000), "."));
    expect([tuples.code, tuples.limit]).toEqual(["torch.pickle-limit", "maxDepth"]);
  });

  test("exponential sharing (a list of two references to the previous list, 100 times)", () => {
    const step = pk("(h", 0, "h", 0, "lq", 0);
    const f = failure(pk(0x80, 2, "]q", 0, ...Array.from({ length: 100 }, () => step), "."));
    expect([f.code, f.limit]).toEqual(["torch.pickle-limit", "maxObjects"]);
  });

  test("a list appended to itself (a cycle) and a container edited after being shared", () => {
    expect(failure(pk(0x80, 2, "]q", 0, "h", 0, "a.")).code).toBe("torch.pickle-malformed");
    expect(failure(pk(0x80, 2, "]q", 0, "]h", 0, "ah", 0, "K", 1, "a.")).code).toBe("torch.pickle-malformed");
  });

  test("huge memo index and a missing memo entry", () => {
    const put = failure(pk(0x80, 2, "Nr", u32(0xffffffff), "."));
    expect([put.code, put.limit]).toEqual(["torch.pickle-limit", "maxMemo"]);
    const get = failure(pk(0x80, 2, "j", u32(0xfffffff0), "."));
    expect(get.code).toBe("torch.pickle-malformed");
    expect(get.message).toContain("memo index 4294967280");
    expect(failure(pk(0x80, 2, "g99\n.")).code).toBe("torch.pickle-malformed");
    expect(failure(pk(0x80, 2, "Np99999999999999999999\n.")).code).toBe("torch.pickle-limit");
    expect(failure(pk(0x80, 2, "Nq", 0, "q", 1, "."), { maxMemo: 1 }).code).toBe("torch.pickle-limit");
  });

  test("lengths past the end of the input, or over the limit", () => {
    expect(failure(pk(0x80, 2, "X", u32(0x7fffffff), "abc")).code).toBe("torch.pickle-truncated");
    expect(failure(pk(0x80, 4, 0x8d, u64(2n ** 63n), "abc")).code).toBe("torch.pickle-truncated");
    expect(failure(pk(0x80, 4, 0x8e, u64(2n ** 64n - 1n), "abc")).code).toBe("torch.pickle-truncated");
    expect(failure(pk(0x80, 2, 0x8b, u32(0x7fffffff), "abc")).code).toBe("torch.pickle-limit");
    expect(failure(pk(0x80, 2, 0x8b, u32(0x1000), "abc")).code).toBe("torch.pickle-truncated");
    expect(failure(pk(0x80, 2, "T", u32(0xffffffff), "abc")).code).toBe("torch.pickle-malformed");
    const limited = failure(pk(0x80, 2, "X", u32(100), "a".repeat(100), "."), { maxStringBytes: 10 });
    expect([limited.code, limited.limit]).toEqual(["torch.pickle-limit", "maxStringBytes"]);
  });

  test("unknown opcode, truncated pickle (no STOP), empty input, stack underflow", () => {
    const unknown = failure(pk(0x80, 2, "N", 0xff));
    expect([unknown.code, unknown.position]).toEqual(["torch.pickle-malformed", 3]);
    expect(unknown.message).toContain("0xff");
    expect(failure(pk(0x80, 2, "K", 1)).code).toBe("torch.pickle-truncated");
    expect(failure(pk()).code).toBe("torch.pickle-truncated");
    expect(failure(pk(0x80, 2, "a.")).code).toBe("torch.pickle-malformed");
    expect(failure(pk(0x80, 2, ".")).code).toBe("torch.pickle-malformed");
    expect(failure(pk(0x80, 2, "1.")).code).toBe("torch.pickle-malformed");
    expect(failure(pk(0x80, 9, "N.")).code).toBe("torch.pickle-malformed");
    expect(failure(pk(0x80, 2, "cos\nsys")).code).toBe("torch.pickle-truncated");
  });

  test("type confusion: SETITEM on a list, APPEND on a dict, REDUCE on a string, BUILD on an int, bad persistent ids", () => {
    expect(failure(pk(0x80, 2, "]K", 1, "K", 2, "s.")).code).toBe("torch.pickle-malformed");
    expect(failure(pk(0x80, 2, "}K", 1, "a.")).code).toBe("torch.pickle-malformed");
    expect(failure(pk(0x80, 2, "X", u32(1), "x)R.")).code).toBe("torch.pickle-malformed");
    expect(failure(pk(0x80, 2, "K", 1, "}b.")).code).toBe("torch.pickle-malformed");
    expect(failure(pk(0x80, 2, "K", 1, "Q.")).code).toBe("torch.pickle-malformed");
    expect(failure(pk(0x80, 2, "ctorch._utils\n_rebuild_tensor_v2\n(K", 0, "K", 0, ")))", 0x89, "}tR.")).code).toBe("torch.pickle-malformed");
  });

  test("a large stack of plain values within the limits is fine and fast", () => {
    const started = Date.now();
    const many = pk(0x80, 2, "(", "K\x01".repeat(200_000), "l.");
    const value = unpickle(many, { file: "ok.pt" });
    expect(Array.isArray(value) && value.length).toBe(200_000);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(failure(many, { maxStack: 1000 }).limit).toBe("maxStack");
    expect(failure(many, { maxObjects: 1000 }).limit).toBe("maxObjects");
  });
});
