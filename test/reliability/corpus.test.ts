import { existsSync } from "node:fs";
import { cp, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { byOffset, editJson, editShard, fixtureCopy, INDEX, SHARD } from "../support/corpus-hf.js";
import { runPythonScript } from "../support/python.js";
import { FIXTURE, runCli } from "../support/run-cli.js";
import { makeTempDir } from "../support/tmpdir.js";
import { REPO } from "../support/tiny-model.js";

/** A case builds its bad input in `dir` and returns the CLI arguments that must fail. */
interface Case {
  readonly name: string;
  readonly code: string;
  /** Text the message must contain (the file, tensor or record it names). */
  readonly mentions: readonly string[];
  readonly build: (dir: string) => Promise<string[]>;
}

const convert = (hf: string, dir: string, ...flags: string[]) => ["hf2mcore", hf, join(dir, "out"), ...flags];

const shardCase = (name: string, code: string, mentions: string[], edit: Parameters<typeof editShard>[1]): Case => ({
  name,
  code,
  mentions: [SHARD, ...mentions],
  build: async (dir) => {
    const hf = await fixtureCopy(dir);
    await editShard(hf, edit);
    return convert(hf, dir);
  },
});

const configCase = (name: string, code: string, mentions: string[], edit: (c: Record<string, unknown>) => unknown): Case => ({
  name,
  code,
  mentions,
  build: async (dir) => {
    const hf = await fixtureCopy(dir);
    await editJson(join(hf, "config.json"), edit);
    return convert(hf, dir);
  },
});

const first = (h: Record<string, Record<string, unknown>>) => byOffset(h)[0] ?? "";
const second = (h: Record<string, Record<string, unknown>>) => byOffset(h)[1] ?? "";
const offsets = (h: Record<string, Record<string, unknown>>, k: string) => h[k]?.["data_offsets"] as number[];

const SAFETENSORS: Case[] = [
  shardCase("truncated shard", "safetensors.truncated", [], (header, data) => ({ header, data: data.subarray(0, data.length - 100) })),
  shardCase("trailing bytes", "safetensors.trailing-bytes", [], (header, data) => ({ header, data: Buffer.concat([data, Buffer.alloc(16)]) })),
  shardCase("invalid JSON header", "safetensors.bad-json", [], (_h, data) => ({ header: '{"a": [1, 2', data })),
  shardCase("JSON header is a list", "safetensors.bad-json", [], (_h, data) => ({ header: "[1, 2, 3]", data })),
  shardCase("unknown dtype", "safetensors.unknown-dtype", ["F4"], (h, data) => {
    (h[first(h)] as Record<string, unknown>)["dtype"] = "F4";
    return { header: h, data };
  }),
  shardCase("offsets leave a gap", "safetensors.offset-gap", [], (h, data) => {
    const k = second(h);
    const o = offsets(h, k);
    (h[k] as Record<string, unknown>)["data_offsets"] = [(o[0] ?? 0) + 2, (o[1] ?? 0) + 2];
    return { header: h, data };
  }),
  shardCase("offsets overlap", "safetensors.offset-overlap", [], (h, data) => {
    const k = second(h);
    const o = offsets(h, k);
    (h[k] as Record<string, unknown>)["data_offsets"] = [(o[0] ?? 0) - 2, (o[1] ?? 0) - 2];
    return { header: h, data };
  }),
  shardCase("dtype x shape disagrees with the byte length", "safetensors.byte-length-mismatch", [], (h, data) => {
    (h[first(h)] as Record<string, unknown>)["shape"] = [3];
    return { header: h, data };
  }),
  shardCase("a negative dimension", "safetensors.bad-entry", [], (h, data) => {
    (h[first(h)] as Record<string, unknown>)["shape"] = [-1, 64];
    return { header: h, data };
  }),
  shardCase("metadata that is not string to string", "safetensors.bad-metadata", ["__metadata__"], (h, data) => {
    (h as Record<string, unknown>)["__metadata__"] = { format: 1 };
    return { header: h, data };
  }),
  shardCase("a duplicate tensor name", "safetensors.duplicate-tensor", [], (h, data) => {
    const json = JSON.stringify(h);
    const k = first(h);
    const dup = `"${k}":${JSON.stringify(h[k])}`;
    return { header: `${json.slice(0, -1)},${dup}}`, data };
  }),
  {
    name: "header length past the end of the file",
    code: "safetensors.header-past-end",
    mentions: [SHARD],
    build: async (dir) => {
      const hf = await fixtureCopy(dir);
      const b = Buffer.alloc(16);
      b.writeBigUInt64LE(5_000_000n);
      await writeFile(join(hf, SHARD), b);
      return convert(hf, dir);
    },
  },
  {
    name: "header larger than the format allows",
    code: "safetensors.header-too-large",
    mentions: [SHARD],
    build: async (dir) => {
      const hf = await fixtureCopy(dir);
      const b = Buffer.alloc(16);
      b.writeBigUInt64LE(2n ** 40n);
      await writeFile(join(hf, SHARD), b);
      return convert(hf, dir);
    },
  },
  {
    name: "index points to a missing shard",
    code: "safetensors.index-missing-shard",
    mentions: [INDEX, SHARD],
    build: async (dir) => {
      const hf = await fixtureCopy(dir);
      await rm(join(hf, SHARD));
      return convert(hf, dir);
    },
  },
  {
    name: "index names a tensor its shard lacks",
    code: "safetensors.tensor-not-found",
    mentions: ["model.layers.9.mlp.ghost"],
    build: async (dir) => {
      const hf = await fixtureCopy(dir);
      await editJson(join(hf, INDEX), (j) => {
        (j["weight_map"] as Record<string, string>)["model.layers.9.mlp.ghost"] = SHARD;
        return j;
      });
      return convert(hf, dir);
    },
  },
  {
    name: "a shard holds a tensor the index does not map to it",
    code: "safetensors.index-incomplete",
    mentions: ["lm_head.weight"],
    build: async (dir) => {
      const hf = await fixtureCopy(dir);
      await editJson(join(hf, INDEX), (j) => {
        delete (j["weight_map"] as Record<string, string>)["lm_head.weight"];
        return j;
      });
      return convert(hf, dir);
    },
  },
  {
    name: "index is not valid JSON",
    code: "safetensors.index-bad",
    mentions: [INDEX],
    build: async (dir) => {
      const hf = await fixtureCopy(dir);
      await writeFile(join(hf, INDEX), "{ not json");
      return convert(hf, dir);
    },
  },
  {
    name: "no safetensors files at all",
    code: "safetensors.no-files",
    mentions: ["hf"],
    build: async (dir) => {
      const hf = join(dir, "hf");
      await mkdir(hf);
      await cp(join(FIXTURE, "config.json"), join(hf, "config.json"));
      return convert(hf, dir);
    },
  },
];

const MODEL: Case[] = [
  { name: "no config.json", code: "hf.bad-folder", mentions: ["config.json"], build: async (dir) => convert(await mkdirIn(dir, "empty"), dir) },
  configCase("config.json is not JSON", "hf.bad-folder", ["config.json", "invalid JSON"], () => "{ nope"),
  configCase("unsupported architecture, listing the supported ones", "mapping.unsupported-model", ["GPT2LMHeadModel", "MixtralForCausalLM", "LlamaForCausalLM", "Qwen2MoeForCausalLM"], (c) => ({ ...c, architectures: ["GPT2LMHeadModel"] })),
  configCase("config lacks num_hidden_layers", "hf.bad-config", ["num_hidden_layers"], (c) => ({ ...c, num_hidden_layers: undefined })),
  configCase("heads not a multiple of kv heads", "hf.bad-config", ["num_key_value_heads=3"], (c) => ({ ...c, num_key_value_heads: 3 })),
  configCase("unsupported dtype in config", "hf.bad-config", ["int4"], (c) => ({ ...c, torch_dtype: "int4" })),
  configCase("config announces more layers than the files hold", "mapping.unresolved", ["model.layers.4.input_layernorm.weight"], (c) => ({ ...c, num_hidden_layers: 5 })),
  configCase("tensor shapes disagree with config.json", "mapping.unresolved", ["model.embed_tokens.weight", "vocab=251"], (c) => ({ ...c, vocab_size: 251 })),
  configCase("config announces more experts than the files hold", "mapping.unresolved", ["experts.8.w1.weight"], (c) => ({ ...c, num_local_experts: 9 })),
  {
    name: "an unmapped extra tensor",
    code: "mapping.unresolved",
    mentions: ["model.layers.0.extra.bias", "is not mapped by any rule"],
    build: async (dir) => {
      const hf = await fixtureCopy(dir);
      await editShard(hf, (h, data) => {
        const end = Math.max(...byOffset(h).map((k) => offsets(h, k)[1] ?? 0));
        h["model.layers.0.extra.bias"] = { dtype: "BF16", shape: [2], data_offsets: [end, end + 4] };
        return { header: h, data: Buffer.concat([data, Buffer.alloc(4)]) };
      });
      await editJson(join(hf, INDEX), (j) => {
        (j["weight_map"] as Record<string, string>)["model.layers.0.extra.bias"] = SHARD;
        return j;
      });
      return convert(hf, dir);
    },
  },
  {
    name: "a missing tensor",
    code: "mapping.unresolved",
    mentions: ["model.norm.weight"],
    build: async (dir) => {
      const hf = await fixtureCopy(dir);
      await editShard(hf, (h, data) => {
        const o = offsets(h, "model.norm.weight");
        const rest = Object.fromEntries(Object.entries(h).filter(([k]) => k !== "model.norm.weight"));
        const size = (o[1] ?? 0) - (o[0] ?? 0);
        for (const v of Object.values(rest)) {
          const d = v["data_offsets"] as number[] | undefined;
          if (d !== undefined && (d[0] ?? 0) >= (o[1] ?? 0)) {
            v["data_offsets"] = [(d[0] ?? 0) - size, (d[1] ?? 0) - size];
          }
        }
        return { header: rest, data: Buffer.concat([data.subarray(0, o[0]), data.subarray(o[1])]) };
      });
      await editJson(join(hf, INDEX), (j) => {
        delete (j["weight_map"] as Record<string, string>)["model.norm.weight"];
        return j;
      });
      return convert(hf, dir);
    },
  },
];

const LAYOUTS: Case[] = [
  { name: "TP that does not divide the heads", code: "layout.invalid", mentions: ["TP=3"], build: async (dir) => convert(FIXTURE, dir, "--tp", "3") },
  { name: "EP that does not divide the experts", code: "layout.invalid", mentions: ["EP=3", "num_experts=8"], build: async (dir) => convert(FIXTURE, dir, "--ep", "3") },
  { name: "uneven pipeline without PP", code: "layout.invalid", mentions: ["--pp-first-layers"], build: async (dir) => convert(FIXTURE, dir, "--pp-first-layers", "1") },
  { name: "ETP different from TP", code: "usage", mentions: ["--etp 1 differs from --tp 2"], build: async (dir) => convert(FIXTURE, dir, "--tp", "2", "--etp", "1") },
];

async function mkdirIn(dir: string, name: string): Promise<string> {
  await mkdir(join(dir, name), { recursive: true });
  return join(dir, name);
}

function torchCase(file: string, code: string, mentions: string[]): Case {
  return {
    name: `.pt: ${file}`,
    code,
    mentions: [file, ...mentions],
    build: async (dir) => {
      const gen = runPythonScript(join(REPO, "test", "support", "corpus-torch.py"), [join(dir, "pt"), join(dir, "MARKER")]);
      expect(gen.status, gen.stderr).toBe(0);
      return ["inspect", join(dir, "pt", file)];
    },
  };
}

const TORCH: Case[] = [
  torchCase("forbidden-os-system.pt", "torch.pickle-forbidden-global", ["system"]),
  torchCase("forbidden-eval.pt", "torch.pickle-forbidden-global", ["exec", "nothing was executed"]),
  torchCase("forbidden-subprocess.pt", "torch.pickle-forbidden-global", ["subprocess", "Popen"]),
  torchCase("forbidden-torch-function.pt", "torch.pickle-forbidden-global", ["torch", "load"]),
  torchCase("bomb-deep-nesting.pt", "torch.pickle-limit", []),
  torchCase("bomb-marks.pt", "torch.pickle-limit", []),
  torchCase("bomb-memo-index.pt", "torch.pickle-limit", []),
  torchCase("bomb-huge-string.pt", "torch.pickle-truncated", []),
  torchCase("bomb-huge-long.pt", "torch.pickle-limit", []),
  torchCase("truncated-pickle.pt", "torch.pickle-truncated", []),
  torchCase("unknown-opcode.pt", "torch.pickle-malformed", []),
  torchCase("missing-data-pkl.pt", "torch.missing-record", ["data.pkl"]),
  torchCase("missing-version.pt", "torch.missing-record", ["version"]),
  torchCase("bad-version.pt", "torch.bad-version", []),
  torchCase("missing-storage.pt", "torch.missing-record", ["data/0"]),
  torchCase("storage-size-mismatch.pt", "torch.storage-size-mismatch", ["16"]),
  torchCase("two-prefixes.pt", "torch.bad-layout", []),
  torchCase("no-eocd.pt", "torch.zip-no-eocd", []),
  torchCase("truncated-zip.pt", "torch.zip-no-eocd", []),
  torchCase("cd-offset-past-end.pt", "torch.zip-bad-directory", []),
  torchCase("bad-local-header.pt", "torch.zip-bad-local-header", []),
];

const MEGATRON: Case[] = [
  {
    name: "Megatron folder without a tracker file",
    code: "megatron.bad-checkpoint",
    mentions: ["latest_checkpointed_iteration.txt"],
    build: async (dir) => {
      await mkdir(join(dir, "mcore", "release", "mp_rank_00"), { recursive: true });
      return ["mcore2hf", join(dir, "mcore"), join(dir, "out")];
    },
  },
  {
    name: "tracker file with garbage",
    code: "megatron.bad-checkpoint",
    mentions: ["latest_checkpointed_iteration.txt", "final"],
    build: async (dir) => {
      await mkdir(join(dir, "mcore"), { recursive: true });
      await writeFile(join(dir, "mcore", "latest_checkpointed_iteration.txt"), "final");
      return ["mcore2hf", join(dir, "mcore"), join(dir, "out")];
    },
  },
  {
    name: "an output folder that is not empty",
    code: "output.exists",
    mentions: ["out"],
    build: async (dir) => {
      await mkdir(join(dir, "out"));
      await writeFile(join(dir, "out", "notes.txt"), "mine");
      return convert(FIXTURE, dir);
    },
  },
  {
    name: "an output someone else is writing",
    code: "output.locked",
    mentions: ["pid 1"],
    build: async (dir) => {
      await writeFile(join(dir, ".out.megatron-convert-lock"), "1");
      return convert(FIXTURE, dir);
    },
  },
];

const ALL = [...SAFETENSORS, ...MODEL, ...LAYOUTS, ...TORCH, ...MEGATRON];

describe(`bad-input corpus (${ALL.length} cases): exit 2, a typed error naming what is wrong, nothing left behind`, () => {
  it("has at least 40 cases", () => {
    expect(ALL.length).toBeGreaterThanOrEqual(40);
  });
  for (const c of ALL) {
    it(c.name, async () => {
      const dir = await makeTempDir();
      const before = new Set(await readdir(dir));
      const args = await c.build(dir);
      const r = runCli(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`[${c.code}]`);
      for (const m of c.mentions) {
        expect(r.stderr).toContain(m);
      }
      expect(r.stderr).not.toContain("internal error");
      const inputs = new Set(["hf", "pt", "mcore", "empty", "out", ".out.megatron-convert-lock"]);
      expect((await readdir(dir)).filter((n) => !before.has(n) && !inputs.has(n))).toEqual([]);
      if (c.code === "output.exists") {
        expect(await readdir(join(dir, "out"))).toEqual(["notes.txt"]);
      } else {
        expect(existsSync(join(dir, "out"))).toBe(false);
      }
      expect(existsSync(join(dir, "MARKER"))).toBe(false);
    });
  }
});
