import { formatBytes, table, writeOut } from "./print.js";
import { inspectPath } from "../commands/inspect.js";

export async function runInspect(path: string, flags: { json?: boolean }): Promise<void> {
  const files = await inspectPath(path);
  if (flags.json === true) {
    writeOut(JSON.stringify(files, null, 2));
    return;
  }
  for (const file of files) {
    const total = file.tensors.reduce((s, t) => s + t.bytes, 0);
    writeOut(`${file.file} (${file.format}): ${file.tensors.length} tensors, ${formatBytes(total)}`);
    writeOut(table(file.tensors.map((t) => [`  ${t.name}`, t.dtype, `[${t.shape.join(", ")}]`, formatBytes(t.bytes)])));
    const entries = Object.entries(file.entries);
    for (const [key, value] of entries) {
      const text = typeof value === "object" && value !== null ? `${Object.keys(value).length} fields` : JSON.stringify(value);
      writeOut(`  ${key}: ${text}`);
    }
    writeOut("");
  }
}
