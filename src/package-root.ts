import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The package's root folder (holds mappings/ and fixtures/), from src/ or dist/ alike. */
export const PACKAGE_ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The version in package.json, so `--version` and manifests never drift from it. */
export const PACKAGE_VERSION: string = (JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string }).version;
