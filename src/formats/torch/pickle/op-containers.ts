import type { Machine } from "./machine.js";
import { OP } from "./opcodes.js";
import type { Handler } from "./op-scalars.js";
import { parseIntText } from "./text-literals.js";
import { PyDict, PyObject, PyTuple, type PyValue } from "./values.js";

function tuple(m: Machine, count: number): void {
  const items: PyValue[] = [];
  for (let i = 0; i < count; i += 1) {
    items.unshift(m.pop("a tuple item"));
  }
  m.pushNew(new PyTuple(items));
}

function appendTo(m: Machine, items: PyValue[]): void {
  const target = m.top("the list to append to");
  if (!Array.isArray(target)) {
    return m.fail("APPEND(S) on a value that is not a list");
  }
  m.adding(target, items);
  for (const item of items) {
    target.push(item);
  }
}

function setItems(m: Machine, flat: PyValue[]): void {
  if (flat.length % 2 !== 0) {
    return m.fail("SETITEMS with an odd number of items");
  }
  const target = m.top("the dict to set items on");
  if (!(target instanceof PyDict)) {
    return m.fail("SETITEM(S) on a value that is not a dict");
  }
  m.adding(target, flat);
  for (let i = 0; i < flat.length; i += 2) {
    target.set(flat[i] ?? null, flat[i + 1] ?? null);
  }
}

function dictOf(m: Machine, flat: PyValue[]): PyDict {
  if (flat.length % 2 !== 0) {
    return m.fail("DICT with an odd number of items");
  }
  const dict = new PyDict();
  for (let i = 0; i < flat.length; i += 2) {
    dict.set(flat[i] ?? null, flat[i + 1] ?? null);
  }
  return dict;
}

/** A set is kept opaque: builtins.set with its items as a list in args. */
export function setObject(kind: "set" | "frozenset", items: PyValue[]): PyObject {
  return new PyObject("builtins", kind, new PyTuple([items]), null);
}

function addItems(m: Machine, items: PyValue[]): void {
  const target = m.top("the set to add to");
  const list = target instanceof PyObject && target.name === "set" && target.args instanceof PyTuple ? target.args.items[0] : undefined;
  if (!Array.isArray(list)) {
    return m.fail("ADDITEMS on a value that is not a set");
  }
  m.adding(target, items);
  list.push(...items);
}

function textIndex(m: Machine): number {
  const value = parseIntText(m.input.line("a memo index"));
  if (value === undefined || value < 0n) {
    return m.fail("invalid memo index");
  }
  return value >= BigInt(m.limits.maxMemo) ? m.limits.maxMemo : Number(value);
}

/** Stack, memo and container opcodes. */
export const CONTAINER_HANDLERS: ReadonlyArray<readonly [number, Handler]> = [
  [OP.MARK, (m) => m.mark()],
  [OP.POP, (m) => (m.stackEmpty ? m.popMark() : m.pop("the value to discard"))],
  [OP.POP_MARK, (m) => m.popMark()],
  [OP.DUP, (m) => m.push(m.top("the value to duplicate"))],
  [OP.BINPUT, (m) => m.memoPut(m.input.u8("a memo index"))],
  [OP.LONG_BINPUT, (m) => m.memoPut(m.input.u32("a memo index"))],
  [OP.PUT, (m) => m.memoPut(textIndex(m))],
  [OP.MEMOIZE, (m) => m.memoPut(m.memo.size)],
  [OP.BINGET, (m) => m.memoGet(m.input.u8("a memo index"))],
  [OP.LONG_BINGET, (m) => m.memoGet(m.input.u32("a memo index"))],
  [OP.GET, (m) => m.memoGet(textIndex(m))],
  [OP.EMPTY_TUPLE, (m) => m.pushNew(new PyTuple([]))],
  [OP.TUPLE1, (m) => tuple(m, 1)],
  [OP.TUPLE2, (m) => tuple(m, 2)],
  [OP.TUPLE3, (m) => tuple(m, 3)],
  [OP.TUPLE, (m) => m.pushNew(new PyTuple(m.popMark()))],
  [OP.EMPTY_LIST, (m) => m.pushNew([])],
  [OP.LIST, (m) => m.pushNew(m.popMark())],
  [OP.APPEND, (m) => appendTo(m, [m.pop("the value to append")])],
  [OP.APPENDS, (m) => appendTo(m, m.popMark())],
  [OP.EMPTY_DICT, (m) => m.pushNew(new PyDict())],
  [OP.DICT, (m) => m.pushNew(dictOf(m, m.popMark()))],
  [
    OP.SETITEM,
    (m) => {
      const value = m.pop("a dict value");
      const key = m.pop("a dict key");
      setItems(m, [key, value]);
    },
  ],
  [OP.SETITEMS, (m) => setItems(m, m.popMark())],
  [OP.EMPTY_SET, (m) => m.pushNew(setObject("set", []))],
  [OP.ADDITEMS, (m) => addItems(m, m.popMark())],
  [OP.FROZENSET, (m) => m.pushNew(setObject("frozenset", m.popMark()))],
];
