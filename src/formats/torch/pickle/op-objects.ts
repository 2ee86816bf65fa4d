import { allowedGlobal, canonicalModule } from "./allowed-globals.js";
import type { Machine } from "./machine.js";
import { HIGHEST_PROTOCOL, OP } from "./opcodes.js";
import type { Handler } from "./op-scalars.js";
import { PyDict, PyGlobal, PyNamespace, PyObject, PyTuple, TensorRef, type PyValue } from "./values.js";
import { ForbiddenGlobalError } from "../errors.js";

const utf8 = new TextDecoder("utf-8");

/** Resolves a global against the allow-list; a forbidden one stops everything here. */
function resolveGlobal(m: Machine, module: string, name: string): PyGlobal {
  if (allowedGlobal(module, name) === undefined) {
    throw new ForbiddenGlobalError(m.file, `${module}.${name}`, m.opStart);
  }
  return new PyGlobal(canonicalModule(module), name);
}

function call(m: Machine, callable: PyValue, args: readonly PyValue[]): void {
  if (!(callable instanceof PyGlobal)) {
    return m.fail("REDUCE/NEWOBJ on a value that is not a global");
  }
  const rule = allowedGlobal(callable.module, callable.name)?.call;
  if (rule === undefined) {
    return m.fail(`${callable.qualifiedName} is not callable here`);
  }
  m.pushNew(rule(m, args));
}

function argsTuple(m: Machine, value: PyValue, what: string): readonly PyValue[] {
  if (!(value instanceof PyTuple)) {
    return m.fail(`${what} arguments must be a tuple`);
  }
  return value.items;
}

/** BUILD: __setstate__ / __dict__.update, interpreted only for the types that need it. */
function build(m: Machine): void {
  const state = m.pop("the BUILD state");
  const target = m.top("the object to BUILD");
  if (target instanceof PyObject) {
    m.adding(target, [state]);
    target.build(state);
  } else if (target instanceof PyNamespace) {
    const dict = state instanceof PyTuple ? state.items[0] : state;
    if (!(dict instanceof PyDict)) {
      return m.fail("BUILD of a Namespace needs a dict");
    }
    m.adding(target, dict.entries.flat());
    for (const [k, v] of dict.entries) {
      target.attrs.set(k, v);
    }
  } else if (!(target instanceof PyDict) && !(target instanceof TensorRef)) {
    // a state_dict's `_metadata` (dict BUILD) and tensor state carry nothing a reader needs
    return m.fail("BUILD on a value that takes no state");
  }
}

function persistent(m: Machine, pid: PyValue): void {
  m.pushNew(m.persistent(pid));
}

function textGlobal(m: Machine): PyGlobal {
  const module = utf8.decode(m.input.line("a GLOBAL module"));
  const name = utf8.decode(m.input.line("a GLOBAL name"));
  return resolveGlobal(m, module, name);
}

/** Globals, calls, BUILD, persistent ids and the protocol/framing opcodes. */
export const OBJECT_HANDLERS: ReadonlyArray<readonly [number, Handler]> = [
  [
    OP.PROTO,
    (m) => {
      const protocol = m.input.u8("the protocol");
      if (protocol > HIGHEST_PROTOCOL) {
        return m.fail(`unsupported pickle protocol ${protocol}`);
      }
    },
  ],
  [OP.FRAME, (m) => void m.input.u64("a frame length")],
  [OP.GLOBAL, (m) => m.push(textGlobal(m))],
  [
    OP.STACK_GLOBAL,
    (m) => {
      const name = m.pop("a STACK_GLOBAL name");
      const module = m.pop("a STACK_GLOBAL module");
      if (typeof name !== "string" || typeof module !== "string") {
        return m.fail("STACK_GLOBAL needs two strings");
      }
      m.push(resolveGlobal(m, module, name));
    },
  ],
  [
    OP.REDUCE,
    (m) => {
      const args = argsTuple(m, m.pop("REDUCE arguments"), "REDUCE");
      call(m, m.pop("the REDUCE callable"), args);
    },
  ],
  [
    OP.NEWOBJ,
    (m) => {
      const args = argsTuple(m, m.pop("NEWOBJ arguments"), "NEWOBJ");
      call(m, m.pop("the NEWOBJ class"), args);
    },
  ],
  [
    OP.NEWOBJ_EX,
    (m) => {
      const kwargs = m.pop("NEWOBJ_EX keyword arguments");
      const args = argsTuple(m, m.pop("NEWOBJ_EX arguments"), "NEWOBJ_EX");
      if (!(kwargs instanceof PyDict) || kwargs.size > 0) {
        return m.fail("NEWOBJ_EX with keyword arguments is not supported");
      }
      call(m, m.pop("the NEWOBJ_EX class"), args);
    },
  ],
  [
    OP.INST,
    (m) => {
      const cls = textGlobal(m);
      call(m, cls, m.popMark());
    },
  ],
  [
    OP.OBJ,
    (m) => {
      const [cls = null, ...args] = m.popMark();
      call(m, cls, args);
    },
  ],
  [OP.BUILD, build],
  [OP.BINPERSID, (m) => persistent(m, m.pop("a persistent id"))],
  [OP.PERSID, (m) => persistent(m, utf8.decode(m.input.line("a persistent id")))],
  ...[OP.EXT1, OP.EXT2, OP.EXT4].map(
    (op, i): readonly [number, Handler] => [
      op,
      (m) => {
        const code = [() => m.input.u8("an extension code"), () => m.input.u16("an extension code"), () => m.input.i32("an extension code")][i]?.() ?? 0;
        throw new ForbiddenGlobalError(m.file, `copyreg extension code ${code}`, m.opStart);
      },
    ],
  ),
  [OP.NEXT_BUFFER, (m) => m.fail("out-of-band buffers (NEXT_BUFFER) are not supported")],
  [OP.READONLY_BUFFER, (m) => m.fail("out-of-band buffers (READONLY_BUFFER) are not supported")],
];
