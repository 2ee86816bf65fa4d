import { fileURLToPath } from "node:url";

/** The package's root folder (holds mappings/ and fixtures/), from src/ or dist/ alike. */
export const PACKAGE_ROOT = fileURLToPath(new URL("../", import.meta.url));

export const PACKAGE_VERSION = "0.1.0";
