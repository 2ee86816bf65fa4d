import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { symlink } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FIXTURE } from "../support/run-cli.js";
import { makeTempDir } from "../support/tmpdir.js";
import { REPO } from "../support/tiny-model.js";

/** What `npx megatron-convert` runs: the packed package, not the work tree. */
describe("the packed npm package", () => {
  it("holds the built CLI, the mapping tables and the Python verifier, and converts", async () => {
    const dir = await makeTempDir();
    const tarball = execFileSync("npm", ["pack", "--ignore-scripts", "--pack-destination", dir, "--silent"], { cwd: REPO, encoding: "utf8" }).trim().split("\n").pop() ?? "";
    execFileSync("tar", ["-xzf", join(dir, tarball), "-C", dir]);
    const pkg = join(dir, "package");
    for (const file of ["bin/megatron-convert.js", "dist/cli/main.js", "mappings/mixtral.json", "mappings/megatron.json", "src/verify/python/forward_verify.py", "README.md"]) {
      expect(existsSync(join(pkg, file)), file).toBe(true);
    }
    expect(existsSync(join(pkg, "test"))).toBe(false);
    await symlink(join(REPO, "node_modules"), join(pkg, "node_modules"));
    const run = (args: string[]) => spawnSync(process.execPath, [join(pkg, "bin", "megatron-convert.js"), ...args], { encoding: "utf8" });
    expect(run(["--version"]).stdout.trim()).toMatch(/^[0-9]+\.[0-9]+\.[0-9]+$/);
    const out = join(dir, "mcore");
    const convert = run(["hf2mcore", FIXTURE, out, "--tp", "2", "--ep", "2", "--quiet"]);
    expect(convert.status, convert.stderr).toBe(0);
    expect(run(["verify", FIXTURE, out]).status).toBe(0);
  });
});
