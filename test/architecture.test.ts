import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO } from "./support/tiny-model.js";

/** Every import of every source file, as the room (top folder under src/) or package it reaches. */
async function imports(): Promise<{ file: string; target: string; internal: boolean }[]> {
  const out: { file: string; target: string; internal: boolean }[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        await walk(path);
      } else if (e.name.endsWith(".ts")) {
        const text = await readFile(path, "utf8");
        // static imports and re-exports, and dynamic import("...") (modules loaded lazily)
        for (const m of text.matchAll(/^(?:import|export)[^'"]*?from\s+["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm)) {
          const spec = m[1] ?? m[2] ?? "";
          const target = spec.startsWith(".") ? relative(join(REPO, "src"), join(dir, spec)).replace(/\.js$/, "") : spec;
          out.push({ file: relative(join(REPO, "src"), path), target, internal: spec.startsWith(".") });
        }
      }
    }
  };
  await walk(join(REPO, "src"));
  return out;
}

const room = (path: string): string => (path.includes("/") ? (path.split("/")[0] ?? "") : path);

/** Which rooms each room may import (style.md 6.1): dependencies point inward. */
const ALLOWED: Record<string, readonly string[]> = {
  formats: ["formats", "model/tensor", "errors"],
  model: ["model", "errors"],
  mapping: ["mapping", "model", "errors"],
  hf: ["hf", "formats", "model", "mapping", "engine", "errors", "package-root"],
  megatron: ["megatron", "formats", "model", "mapping", "engine", "errors"],
  engine: ["engine", "formats", "mapping", "model", "megatron", "errors"],
  verify: ["verify", "engine", "formats", "mapping", "model", "megatron", "hf", "errors", "package-root"],
};

describe("the rooms of the house", async () => {
  const all = await imports();
  it("finds the imports", () => {
    expect(all.length).toBeGreaterThan(100);
  });
  for (const [from, allowed] of Object.entries(ALLOWED)) {
    it(`${from}/ imports only ${allowed.join(", ")} (and packages checked below)`, () => {
      const bad = all
        .filter((i) => room(i.file) === from && i.internal)
        .filter((i) => !allowed.some((a) => i.target === a || i.target.startsWith(`${a}/`) || room(i.target) === a))
        .map((i) => `${i.file} -> ${i.target}`);
      expect(bad).toEqual([]);
    });
  }
  it("formats/ imports no package but node:*", () => {
    expect(all.filter((i) => room(i.file) === "formats" && !i.internal && !i.target.startsWith("node:")).map((i) => `${i.file} -> ${i.target}`)).toEqual([]);
  });
  it("formats/ never names Megatron or HF model parts", async () => {
    const words = /decoder|experts?\b|layers\.|megatron|mixtral/i;
    const offenders = all.filter((i) => room(i.file) === "formats" && words.test(i.target)).map((i) => i.file);
    expect(offenders).toEqual([]);
  });
  const only: [string, (file: string) => boolean][] = [
    ["@huggingface/hub", (f) => f === "hf/hub.ts"],
    ["cli-progress", (f) => f === "cli/progress-bars.ts"],
    ["zx", (f) => f.startsWith("verify/")],
    ["commander", (f) => f.startsWith("cli/") || f.startsWith("bench/")],
  ];
  for (const [pkg, may] of only) {
    it(`only its one room imports ${pkg}`, () => {
      expect(all.filter((i) => i.target === pkg || i.target.startsWith(`${pkg}/`)).map((i) => i.file).filter((f) => !may(f))).toEqual([]);
    });
  }
});
