/**
 * Name patterns with named integer captures: "decoder.layers.{layer}.mlp.experts.local_experts.{expert}.weight".
 * Capture names are closed: `layer` (decoder layer) and `expert`.
 */
export const CAPTURE_NAMES = ["layer", "expert"] as const;
export type CaptureName = (typeof CAPTURE_NAMES)[number];
export type Captures = Readonly<Partial<Record<CaptureName, number>>>;

export interface Pattern {
  readonly source: string;
  readonly captures: readonly CaptureName[];
  readonly regex: RegExp;
}

const PLACEHOLDER = /\{([a-zA-Z_]+)\}/g;

export function isCaptureName(name: string): name is CaptureName {
  return (CAPTURE_NAMES as readonly string[]).includes(name);
}

/** Compiles a pattern; returns the unknown capture names instead when there are any. */
export function compilePattern(source: string): Pattern | { unknown: string[] } {
  const captures: CaptureName[] = [];
  const unknown: string[] = [];
  let regex = "^";
  let last = 0;
  for (const match of source.matchAll(PLACEHOLDER)) {
    const name = match[1] ?? "";
    regex += escapeRegex(source.slice(last, match.index));
    if (isCaptureName(name)) {
      captures.push(name);
      regex += "(0|[1-9][0-9]*)";
    } else {
      unknown.push(name);
    }
    last = (match.index ?? 0) + match[0].length;
  }
  regex += `${escapeRegex(source.slice(last))}$`;
  if (unknown.length > 0) {
    return { unknown };
  }
  return { source, captures, regex: new RegExp(regex) };
}

export function matchPattern(pattern: Pattern, name: string): Captures | undefined {
  const m = pattern.regex.exec(name);
  if (m === null) {
    return undefined;
  }
  const captures: Partial<Record<CaptureName, number>> = {};
  for (let i = 0; i < pattern.captures.length; i++) {
    const capture = pattern.captures[i] as CaptureName;
    const value = Number(m[i + 1]);
    if (captures[capture] !== undefined && captures[capture] !== value) {
      return undefined;
    }
    captures[capture] = value;
  }
  return captures;
}

export function renderPattern(source: string, captures: Captures): string {
  return source.replace(PLACEHOLDER, (whole, name: string) => {
    const value = isCaptureName(name) ? captures[name] : undefined;
    if (value === undefined) {
      throw new Error(`pattern ${source}: no value for {${name}}`);
    }
    return String(value);
  });
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
