import { isLegacyStorageClass, isTorchDtypeName } from "../dtypes.js";
import type { Machine } from "./machine.js";
import { IDENTIFIER, MEGATRON_MODULE, bytesOf, encodeText, enumMember, orderedDict, setOf } from "./global-calls.js";
import { rebuildParameter, rebuildTensor } from "./rebuild-tensor.js";
import { PyDict, PyGlobal, PyNamespace, PyObject, PyTuple, type PyValue } from "./values.js";

/**
 * The allow-list of the restricted unpickler. A global not listed here is refused at GLOBAL
 * time. Listed globals are data: some are only values (dtypes, storage classes), the others
 * have a `call` that interprets REDUCE/NEWOBJ without executing anything: tensors become
 * TensorRef, containers their Py* class, the rest an opaque PyObject.
 */
export type GlobalCall = (m: Machine, args: readonly PyValue[]) => PyValue;

export interface AllowedGlobal {
  /** Absent: the global may only be used as a value (e.g. torch.bfloat16). */
  readonly call?: GlobalCall;
}

const VALUE: AllowedGlobal = {};

const opaque =
  (module: string, name: string): GlobalCall =>
  (_m, args) =>
    new PyObject(module, name, new PyTuple(args), null);

function rebuildFromType(m: Machine, args: readonly PyValue[]): PyValue {
  const [func, , inner] = args;
  if (!(func instanceof PyGlobal) || !(inner instanceof PyTuple)) {
    return m.fail("_rebuild_from_type_v2 expects (func, type, args, state)");
  }
  const call = allowedGlobal(func.module, func.name)?.call;
  if (call === undefined) {
    return m.fail(`_rebuild_from_type_v2 of ${func.qualifiedName}, which is not callable here`);
  }
  return call(m, inner.items);
}

const CALLS = new Map<string, GlobalCall>(Object.entries({
  "torch._utils._rebuild_tensor": (m, a) => rebuildTensor(m, a, "v1"),
  "torch._utils._rebuild_tensor_v2": (m, a) => rebuildTensor(m, a, "v2"),
  "torch._utils._rebuild_tensor_v3": (m, a) => rebuildTensor(m, a, "v3"),
  "torch._utils._rebuild_parameter": rebuildParameter,
  "torch._utils._rebuild_parameter_with_state": rebuildParameter,
  "torch._tensor._rebuild_from_type_v2": rebuildFromType,
  "torch.Size": (m, [dims]) => {
    if (!(dims instanceof PyTuple) && !Array.isArray(dims)) {
      return m.fail("torch.Size expects a tuple");
    }
    return new PyTuple(Array.isArray(dims) ? [...dims] : dims.items);
  },
  "collections.OrderedDict": orderedDict,
  "argparse.Namespace": () => new PyNamespace(new PyDict()),
  "_codecs.encode": (m, [text, encoding]) => encodeText(m, text ?? null, encoding ?? null),
  "builtins.bytes": bytesOf,
  "builtins.bytearray": bytesOf,
  "builtins.getattr": enumMember,
  "builtins.set": (m, args) => setOf(m, "set", args),
  "builtins.frozenset": (m, args) => setOf(m, "frozenset", args),
} satisfies Record<string, GlobalCall>));

/** Opaque helper types real Megatron / TransformerEngine / numpy checkpoints contain. */
const OPAQUE = new Set([
  "_io.BytesIO",
  "io.BytesIO",
  "torch._C.Generator",
  "torch.device",
  "numpy.ndarray",
  "numpy.dtype",
  "numpy.core.multiarray._reconstruct",
  "numpy.core.multiarray.scalar",
  "numpy._core.multiarray._reconstruct",
  "numpy._core.multiarray.scalar",
  "builtins.slice",
  "builtins.complex",
  "pathlib.Path",
  "pathlib.PosixPath",
  "pathlib.WindowsPath",
  "pathlib.PurePosixPath",
  "pathlib.PureWindowsPath",
  "types.SimpleNamespace",
  "signal.Signals",
]);

const VALUE_ONLY = new Set(["torch.storage.UntypedStorage", "torch.storage.TypedStorage", "torch.Tensor", "torch.nn.parameter.Parameter"]);

/** The rule for `module.name`, or undefined when the global is forbidden. */
export function allowedGlobal(rawModule: string, name: string): AllowedGlobal | undefined {
  const module = canonicalModule(rawModule);
  const qualified = `${module}.${name}`;
  const call = CALLS.get(qualified);
  if (call !== undefined) {
    return { call };
  }
  if (VALUE_ONLY.has(qualified) || (module === "torch" && (isTorchDtypeName(name) || isLegacyStorageClass(name)))) {
    return VALUE;
  }
  if (module === "torch.cuda" && isLegacyStorageClass(name)) {
    return VALUE;
  }
  const isOpaque =
    OPAQUE.has(qualified) || (module === "numpy.dtypes" && /^[A-Za-z0-9]+DType$/.test(name)) || (MEGATRON_MODULE.test(module) && IDENTIFIER.test(name));
  return isOpaque ? { call: opaque(module, name) } : undefined;
}

/** The module name as the allow-list sees it (Python 2 `__builtin__` is `builtins`). */
export function canonicalModule(module: string): string {
  return module === "__builtin__" ? "builtins" : module;
}
