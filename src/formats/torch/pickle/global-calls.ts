import type { Machine } from "./machine.js";
import { setObject } from "./op-containers.js";
import { PyBytes, PyGlobal, PyObject, PyOrderedDict, PyTuple, type PyValue } from "./values.js";

/**
 * How the allow-listed builtins and containers are interpreted on REDUCE/NEWOBJ: pure
 * functions of their arguments, nothing is imported or executed.
 */

export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MEGATRON_MODULE = /^megatron(\.[A-Za-z_][A-Za-z0-9_]*)+$/;

const latin1Encodings = new Set(["latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1"]);

export function encodeText(m: Machine, text: PyValue, encoding: PyValue): PyBytes {
  if (typeof text !== "string") {
    return m.fail("_codecs.encode expects a str");
  }
  const enc = typeof encoding === "string" ? encoding.toLowerCase() : "utf-8";
  if (latin1Encodings.has(enc)) {
    const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0));
    if ([...text].some((c) => c.charCodeAt(0) > 0xff)) {
      return m.fail("_codecs.encode: text outside latin-1");
    }
    return new PyBytes(bytes);
  }
  if (enc === "utf-8" || enc === "utf8") {
    return new PyBytes(new TextEncoder().encode(text));
  }
  return m.fail(`_codecs.encode with the unsupported encoding ${String(encoding)}`);
}

export function bytesOf(m: Machine, args: readonly PyValue[]): PyBytes {
  const [first, second] = args;
  if (first === undefined) {
    return new PyBytes(new Uint8Array(0));
  }
  if (typeof first === "string") {
    return encodeText(m, first, second ?? null);
  }
  if (first instanceof PyBytes) {
    return new PyBytes(first.bytes.slice());
  }
  if (Array.isArray(first) && first.every((b) => typeof b === "number" && Number.isInteger(b) && b >= 0 && b < 256)) {
    return new PyBytes(Uint8Array.from(first as number[]));
  }
  return m.fail("bytes()/bytearray() with unsupported arguments");
}

export function orderedDict(m: Machine, args: readonly PyValue[]): PyOrderedDict {
  const dict = new PyOrderedDict();
  const [pairs] = args;
  if (pairs === undefined) {
    return dict;
  }
  const items = Array.isArray(pairs) ? pairs : pairs instanceof PyTuple ? pairs.items : undefined;
  if (items === undefined) {
    return m.fail("OrderedDict() argument must be a list of pairs");
  }
  for (const pair of items) {
    const kv = Array.isArray(pair) ? pair : pair instanceof PyTuple ? pair.items : [];
    if (kv.length !== 2) {
      return m.fail("OrderedDict() argument must be a list of pairs");
    }
    dict.set(kv[0] ?? null, kv[1] ?? null);
  }
  return dict;
}

/** Python >= 3.11 pickles an Enum member as getattr(EnumClass, "name"); kept opaque. */
export function enumMember(m: Machine, args: readonly PyValue[]): PyObject {
  const [owner, attr] = args;
  const enumClass = owner instanceof PyGlobal && (MEGATRON_MODULE.test(owner.module) || owner.qualifiedName === "signal.Signals");
  if (args.length !== 2 || !enumClass || typeof attr !== "string" || !IDENTIFIER.test(attr)) {
    return m.fail("getattr is only accepted as getattr(<Megatron or signal enum class>, <member name>)");
  }
  return new PyObject("builtins", "getattr", new PyTuple([owner, attr]), null);
}

function iterable(m: Machine, value: PyValue | undefined): readonly PyValue[] {
  if (value === undefined) {
    return [];
  }
  if (Array.isArray(value)) {
    return value;
  }
  if (value instanceof PyTuple) {
    return value.items;
  }
  return m.fail("set()/frozenset() argument must be a list or tuple");
}

/** set(iterable) / frozenset(iterable), kept opaque as builtins.set with the items in a list. */
export function setOf(m: Machine, kind: "set" | "frozenset", args: readonly PyValue[]): PyObject {
  return setObject(kind, [...iterable(m, args[0])]);
}
