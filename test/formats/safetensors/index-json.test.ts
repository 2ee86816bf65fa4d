import { describe, expect, it } from "vitest";
import { ConvertError } from "../../../src/errors.js";
import { parseSafetensorsIndex, serializeSafetensorsIndex } from "../../../src/formats/safetensors/index-json.js";
import { runPython } from "../../support/python.js";

describe("serializeSafetensorsIndex", () => {
  it("writes what transformers writes: indent 2, sorted keys, trailing newline", () => {
    const text = serializeSafetensorsIndex(
      new Map([
        ["model.embed_tokens.weight", "model-00001-of-00002.safetensors"],
        ["lm_head.weight", "model-00002-of-00002.safetensors"],
      ]),
      2469134,
      1234567,
    );
    expect(text).toBe(
      [
        "{",
        '  "metadata": {',
        '    "total_parameters": 1234567,',
        '    "total_size": 2469134',
        "  },",
        '  "weight_map": {',
        '    "lm_head.weight": "model-00002-of-00002.safetensors",',
        '    "model.embed_tokens.weight": "model-00001-of-00002.safetensors"',
        "  }",
        "}",
        "",
      ].join("\n"),
    );
  });

  it("matches Python json.dumps(index, indent=2, sort_keys=True) byte for byte on awkward names", () => {
    const names = ["10", "2", "0", "b", "B", "é.w", 'q"uote', "back\\slash", "tab\t", "del\u007f", "z\u2028", "_"];
    const weightMap = new Map(names.map((n, i) => [n, `model-0000${(i % 2) + 1}-of-00002.safetensors`] as const));
    const ours = serializeSafetensorsIndex(weightMap, 6040, 3010);
    const python = runPython(
      [
        "import json, sys",
        "wm = json.loads(sys.stdin.read())",
        'index = {"metadata": {"total_size": 6040, "total_parameters": 3010}, "weight_map": wm}',
        'sys.stdout.write(json.dumps(index, indent=2, sort_keys=True) + "\\n")',
      ].join("\n"),
      [],
      JSON.stringify(Object.fromEntries(weightMap)),
    );
    expect(ours).toBe(python);
  });
});

describe("parseSafetensorsIndex", () => {
  it("reads weight_map and metadata; metadata is optional", () => {
    const index = parseSafetensorsIndex('{"metadata":{"total_size":4,"tied":"x"},"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}}', "i.json");
    expect(index.metadata).toEqual({ total_size: 4, tied: "x" });
    expect([...index.weightMap]).toEqual([
      ["a", "s1.safetensors"],
      ["b", "s2.safetensors"],
    ]);
    expect(parseSafetensorsIndex('{"weight_map":{"a":"s.safetensors"}}', "i.json").metadata).toEqual({});
  });

  it("round-trips what serializeSafetensorsIndex writes", () => {
    const weightMap = new Map([
      ["1", "a.safetensors"],
      ["é", "b.safetensors"],
    ]);
    const parsed = parseSafetensorsIndex(serializeSafetensorsIndex(weightMap, 10, 5), "i.json");
    expect(new Map(parsed.weightMap)).toEqual(weightMap);
    expect(parsed.metadata).toEqual({ total_parameters: 5, total_size: 10 });
  });

  it("safetensors.index-bad names the file and the offending entry", () => {
    const bad: [string, string][] = [
      ["not json", "invalid JSON"],
      ['"x"', "not a JSON object"],
      ['{"metadata":[],"weight_map":{"a":"s"}}', '"metadata"'],
      ['{"weight_map":[]}', '"weight_map"'],
      ['{"weight_map":{"w.x":"sub/s.safetensors"}}', '"w.x"'],
      ['{"weight_map":{"w.y":".."}}', '"w.y"'],
      ['{"weight_map":{"w.z":null}}', '"w.z"'],
    ];
    for (const [text, mention] of bad) {
      let caught: unknown;
      try {
        parseSafetensorsIndex(text, "/m/model.safetensors.index.json");
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(ConvertError);
      expect((caught as ConvertError).code).toBe("safetensors.index-bad");
      expect((caught as Error).message).toContain("/m/model.safetensors.index.json");
      expect((caught as Error).message).toContain(mention);
    }
  });
});
