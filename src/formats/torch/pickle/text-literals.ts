/**
 * The protocol-0 text arguments (CPython Lib/pickle.py load_int, load_float, load_string,
 * load_unicode). Each returns undefined for text CPython would reject.
 */

const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("latin1");

/** INT / LONG / GET / PUT argument: an optional sign and decimal digits (LONG may end in L). */
export function parseIntText(bytes: Uint8Array, allowL = false): bigint | undefined {
  let text = latin1(bytes).trim();
  if (allowL && text.endsWith("L")) {
    text = text.slice(0, -1);
  }
  if (!/^[+-]?\d+$/.test(text) || text.length > 4300) {
    return undefined;
  }
  return BigInt(text);
}

/** FLOAT argument, as Python's float(). */
export function parseFloatText(bytes: Uint8Array): number | undefined {
  const text = latin1(bytes).trim().toLowerCase();
  const special: Record<string, number> = { nan: NaN, "+nan": NaN, "-nan": NaN, inf: Infinity, "+inf": Infinity, "-inf": -Infinity, infinity: Infinity, "-infinity": -Infinity };
  if (text in special) {
    return special[text];
  }
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(text)) {
    return undefined;
  }
  return Number(text);
}

const SIMPLE_ESCAPES: Record<string, number> = { "\n": -1, "\\": 0x5c, "'": 0x27, '"': 0x22, a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11 };

/** STRING argument: a quoted Python 2 str literal, escapes decoded (codecs.escape_decode). */
export function decodeStringLiteral(bytes: Uint8Array): Uint8Array | undefined {
  const text = latin1(bytes);
  const quote = text[0];
  if (text.length < 2 || (quote !== "'" && quote !== '"') || text[text.length - 1] !== quote) {
    return undefined;
  }
  const body = text.slice(1, -1);
  const out: number[] = [];
  for (let i = 0; i < body.length; i += 1) {
    const c = body[i] ?? "";
    if (c !== "\\") {
      out.push(c.charCodeAt(0));
      continue;
    }
    const e = body[i + 1] ?? "";
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) {
      if (simple >= 0) {
        out.push(simple);
      }
      i += 1;
    } else if (e === "x" && /^[0-9a-fA-F]{2}$/.test(body.slice(i + 2, i + 4))) {
      out.push(parseInt(body.slice(i + 2, i + 4), 16));
      i += 3;
    } else if (/^[0-7]/.test(e)) {
      const digits = /^[0-7]{1,3}/.exec(body.slice(i + 1))?.[0] ?? e;
      out.push(parseInt(digits, 8) & 0xff);
      i += digits.length;
    } else {
      out.push(0x5c);
    }
  }
  return Uint8Array.from(out);
}

/** UNICODE argument: raw-unicode-escape (latin-1 text with \uXXXX and \UXXXXXXXX). */
export function decodeRawUnicodeEscape(bytes: Uint8Array): string | undefined {
  const text = latin1(bytes);
  let out = "";
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i] ?? "";
    const kind = text[i + 1];
    if (c === "\\" && (kind === "u" || kind === "U")) {
      const width = kind === "u" ? 4 : 8;
      const hex = text.slice(i + 2, i + 2 + width);
      if (!new RegExp(`^[0-9a-fA-F]{${width}}$`).test(hex)) {
        return undefined;
      }
      const code = parseInt(hex, 16);
      if (code > 0x10ffff) {
        return undefined;
      }
      out += String.fromCodePoint(code);
      i += 1 + width;
    } else {
      out += c;
    }
  }
  return out;
}
