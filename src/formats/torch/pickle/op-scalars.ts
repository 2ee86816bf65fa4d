import { decodeLong, intValue } from "./longs.js";
import type { Machine } from "./machine.js";
import { OP } from "./opcodes.js";
import { decodeRawUnicodeEscape, decodeStringLiteral, parseFloatText, parseIntText } from "./text-literals.js";
import { PyBytes, PyFloat } from "./values.js";

export type Handler = (m: Machine) => void;

/** LONG4 payloads above this are refused (a 64 KiB int has ~158 000 decimal digits). */
const MAX_LONG_BYTES = 1 << 16;

const utf8 = new TextDecoder("utf-8");

const str = (bytes: Uint8Array): string => utf8.decode(bytes);

function textInt(m: Machine, allowL: boolean): bigint {
  const value = parseIntText(m.input.line("an int line"), allowL);
  if (value === undefined) {
    return m.fail("invalid int literal");
  }
  return value;
}

function long(m: Machine, length: number): void {
  if (length < 0) {
    return m.fail(`negative LONG length ${length}`);
  }
  if (length > MAX_LONG_BYTES) {
    m.exceed("maxStringBytes");
  }
  m.push(intValue(decodeLong(m.input.take(length, "a long"))));
}

/** Copies bytes out of the pickle buffer (PyBytes must not alias data.pkl). */
const bytesOf = (m: Machine, length: number): PyBytes => new PyBytes(m.input.take(length, "bytes").slice());

/** Numbers, None, booleans, strings and bytes: opcodes that push one immutable value. */
export const SCALAR_HANDLERS: ReadonlyArray<readonly [number, Handler]> = [
  [OP.NONE, (m) => m.push(null)],
  [OP.NEWTRUE, (m) => m.push(true)],
  [OP.NEWFALSE, (m) => m.push(false)],
  [OP.BININT, (m) => m.push(m.input.i32("a BININT"))],
  [OP.BININT1, (m) => m.push(m.input.u8("a BININT1"))],
  [OP.BININT2, (m) => m.push(m.input.u16("a BININT2"))],
  [OP.LONG1, (m) => long(m, m.input.u8("a LONG1 length"))],
  [OP.LONG4, (m) => long(m, m.input.i32("a LONG4 length"))],
  [
    OP.INT,
    (m) => {
      const line = m.input.line("an int line");
      const text = Buffer.from(line).toString("latin1");
      if (text === "00" || text === "01") {
        m.push(text === "01");
        return;
      }
      const value = parseIntText(line);
      if (value === undefined) {
        return m.fail("invalid INT literal");
      }
      m.push(intValue(value));
    },
  ],
  [OP.LONG, (m) => m.push(intValue(textInt(m, true)))],
  [OP.BINFLOAT, (m) => m.push(new PyFloat(m.input.f64be("a BINFLOAT")))],
  [
    OP.FLOAT,
    (m) => {
      const value = parseFloatText(m.input.line("a float line"));
      if (value === undefined) {
        return m.fail("invalid FLOAT literal");
      }
      m.push(new PyFloat(value));
    },
  ],
  [OP.BINUNICODE, (m) => m.push(str(m.input.take(m.input.u32("a BINUNICODE length"), "a BINUNICODE string")))],
  [OP.SHORT_BINUNICODE, (m) => m.push(str(m.input.take(m.input.u8("a SHORT_BINUNICODE length"), "a string")))],
  [OP.BINUNICODE8, (m) => m.push(str(m.input.take(m.input.u64("a BINUNICODE8 length"), "a string")))],
  [
    OP.BINSTRING,
    (m) => {
      const length = m.input.i32("a BINSTRING length");
      if (length < 0) {
        return m.fail(`negative BINSTRING length ${length}`);
      }
      m.push(str(m.input.take(length, "a BINSTRING string")));
    },
  ],
  [OP.SHORT_BINSTRING, (m) => m.push(str(m.input.take(m.input.u8("a SHORT_BINSTRING length"), "a string")))],
  [
    OP.STRING,
    (m) => {
      const bytes = decodeStringLiteral(m.input.line("a STRING line"));
      if (bytes === undefined) {
        return m.fail("the STRING opcode argument must be quoted");
      }
      m.push(str(bytes));
    },
  ],
  [
    OP.UNICODE,
    (m) => {
      const text = decodeRawUnicodeEscape(m.input.line("a UNICODE line"));
      if (text === undefined) {
        return m.fail("invalid raw-unicode-escape text in UNICODE");
      }
      m.push(text);
    },
  ],
  [OP.BINBYTES, (m) => m.push(bytesOf(m, m.input.u32("a BINBYTES length")))],
  [OP.SHORT_BINBYTES, (m) => m.push(bytesOf(m, m.input.u8("a SHORT_BINBYTES length")))],
  [OP.BINBYTES8, (m) => m.push(bytesOf(m, m.input.u64("a BINBYTES8 length")))],
  [OP.BYTEARRAY8, (m) => m.push(bytesOf(m, m.input.u64("a BYTEARRAY8 length")))],
];
