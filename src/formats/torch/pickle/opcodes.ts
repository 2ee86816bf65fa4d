/**
 * Pickle opcodes (CPython Lib/pickle.py and Lib/pickletools.py). The writer uses only the
 * protocol-2 subset torch.save emits (torch-format.md 2.1); the reader knows them all and
 * implements every one except the extension registry and out-of-band buffers.
 */
export const OP = {
  // protocol 0 and 1
  MARK: 0x28, // (  push the mark
  STOP: 0x2e, // .  end of pickle
  POP: 0x30, // 0  discard the top item
  POP_MARK: 0x31, // 1  discard up to the mark
  DUP: 0x32, // 2  duplicate the top item
  FLOAT: 0x46, // F  float as text line
  INT: 0x49, // I  int as text line (I00 / I01 are booleans)
  BININT: 0x4a, // J  i32
  BININT1: 0x4b, // K  u8
  LONG: 0x4c, // L  int as text line, trailing L
  BININT2: 0x4d, // M  u16
  NONE: 0x4e, // N
  PERSID: 0x50, // P  persistent id as text line
  BINPERSID: 0x51, // Q  persistent id from the stack
  REDUCE: 0x52, // R  callable(*args)
  STRING: 0x53, // S  quoted, escaped string line
  BINSTRING: 0x54, // T  i32 length + bytes
  SHORT_BINSTRING: 0x55, // U  u8 length + bytes
  UNICODE: 0x56, // V  raw-unicode-escape line
  BINUNICODE: 0x58, // X  u32 length + UTF-8
  APPEND: 0x61, // a
  BUILD: 0x62, // b  __setstate__ / __dict__ update
  GLOBAL: 0x63, // c  module line, name line
  DICT: 0x64, // d  dict from the items above the mark
  EMPTY_DICT: 0x7d, // }
  APPENDS: 0x65, // e
  GET: 0x67, // g  memo index as text line
  BINGET: 0x68, // h  u8
  INST: 0x69, // i  module line, name line, args above the mark
  LONG_BINGET: 0x6a, // j  u32
  LIST: 0x6c, // l  list from the items above the mark
  EMPTY_LIST: 0x5d, // ]
  OBJ: 0x6f, // o  class and args above the mark
  PUT: 0x70, // p  memo index as text line
  BINPUT: 0x71, // q  u8
  LONG_BINPUT: 0x72, // r  u32
  SETITEM: 0x73, // s
  TUPLE: 0x74, // t  tuple from the items above the mark
  EMPTY_TUPLE: 0x29, // )
  SETITEMS: 0x75, // u
  BINFLOAT: 0x47, // G  f64 big-endian
  // protocol 2
  PROTO: 0x80, // u8 protocol
  NEWOBJ: 0x81, // cls.__new__(cls, *args)
  EXT1: 0x82, // extension registry (unsupported)
  EXT2: 0x83,
  EXT4: 0x84,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  LONG1: 0x8a, // u8 length + two's complement little-endian
  LONG4: 0x8b, // i32 length + two's complement little-endian
  // protocol 3
  BINBYTES: 0x42, // B  u32 length + bytes
  SHORT_BINBYTES: 0x43, // C  u8 length + bytes
  // protocol 4
  SHORT_BINUNICODE: 0x8c, // u8 length + UTF-8
  BINUNICODE8: 0x8d, // u64 length + UTF-8
  BINBYTES8: 0x8e, // u64 length + bytes
  EMPTY_SET: 0x8f,
  ADDITEMS: 0x90,
  FROZENSET: 0x91,
  NEWOBJ_EX: 0x92, // cls.__new__(cls, *args, **kwargs)
  STACK_GLOBAL: 0x93, // module and name from the stack
  MEMOIZE: 0x94, // memo[len(memo)] = top
  FRAME: 0x95, // u64 frame length (a hint; ignored)
  // protocol 5
  BYTEARRAY8: 0x96, // u64 length + bytes
  NEXT_BUFFER: 0x97, // out-of-band buffer (unsupported)
  READONLY_BUFFER: 0x98,
} as const;

export const HIGHEST_PROTOCOL = 5;
/** What torch.save writes and every torch.load (incl. weights_only) accepts. */
export const WRITE_PROTOCOL = 2;
/** CPython batches dict and list items by this many per MARK ... SETITEMS/APPENDS. */
export const BATCH_SIZE = 1000;
