#!/usr/bin/env node
// The published entry point: the TypeScript sources are compiled to dist/ (Node 20 cannot run .ts).
await import("../dist/cli/main.js");
