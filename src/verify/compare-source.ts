import { castBytes, canCast, UnsupportedCastError } from "../engine/cast.js";
import { atLeast } from "../engine/grow-buffer.js";
import type { SourceSpace } from "../engine/source-space.js";
import type { ByteSource } from "../formats/io/byte-source.js";
import { dtypeBytes, type Dtype } from "../model/tensor.js";
import type { SourceCheck, StoredPiece } from "./byte-checks.js";
import { locateElement } from "./locate.js";
import type { RankFiles } from "./rank-files.js";

/**
 * HF rows read at once, and stored bytes read at once for one piece. A positional read from the
 * page cache costs microseconds beyond its copy, so pieces of a row-parallel weight (a quarter of
 * each row at TP=4) must not be tiny: on the bench's 1.1 GiB model (2 vCPUs, 7 runs) checking
 * took 0.73 s (0.60-0.83) with 256 KiB bands and pieces and 0.53-0.55 s with 1 MiB ones; 2 and 4
 * MiB were no faster, on the 4.3 GiB model either (1.13-1.16 s). A tensor whose single row is
 * larger is read a row at a time.
 */
const BAND_BYTES = 1 << 20;
const STORED_CHUNK_BYTES = 1 << 20;

/** A stored tensor found different: where (its first differing element seen) and how the report says it. */
export interface PieceDifference {
  readonly label: string;
  readonly key: string;
  readonly element: number;
  readonly problem: string;
}

/** Buffers reused from one check to the next in one thread: the HF band and a stored chunk. */
export interface CompareBuffers {
  band?: Uint8Array;
  stored?: Uint8Array;
}

/**
 * Checks every piece cut from one HF tensor in one pass over it: the tensor is read band of rows
 * by band of rows, and each band is compared with the rows of every stored piece it overlaps,
 * read from the rank files. Reports at most one difference per stored tensor (the first found).
 */
export async function checkSource(check: SourceCheck, space: SourceSpace, files: RankFiles, buffers: CompareBuffers): Promise<PieceDifference[]> {
  const { dtype: sourceDtype, view } = space.describe(check.source);
  for (const piece of check.pieces) {
    if (!canCast(sourceDtype, piece.dtype)) {
      throw new UnsupportedCastError(`${piece.label} ${piece.key}`, sourceDtype, piece.dtype);
    }
  }
  const found = new Map<string, PieceDifference>();
  const note = (difference: PieceDifference | undefined): void => {
    if (difference !== undefined) {
      found.set(`${difference.label}\0${difference.key}`, difference);
    }
  };
  const pending = (p: StoredPiece): boolean => !found.has(`${p.label}\0${p.key}`);
  const banded = check.pieces.filter((p) => p.segment.repeat === undefined);
  const rowBytes = view.cols * dtypeBytes(sourceDtype);
  const bandRows = Math.max(1, Math.floor(BAND_BYTES / Math.max(1, rowBytes)));
  const first = Math.min(...banded.map((p) => p.segment.src.row));
  const end = Math.max(...banded.map((p) => p.segment.src.row + p.segment.src.rows));
  for (let row = first; row < end; row += bandRows) {
    const rows = Math.min(bandRows, end - row);
    buffers.band = atLeast(buffers.band, rows * rowBytes, Math.max(BAND_BYTES, rowBytes));
    const raw = await space.readRect(check.source, { row, col: 0, rows, cols: view.cols }, buffers.band);
    const casts = new Map<Dtype, Uint8Array>();
    for (const piece of banded) {
      const s = piece.segment.src;
      const from = Math.max(row, s.row);
      const to = Math.min(row + rows, s.row + s.rows);
      if (from >= to || !pending(piece)) {
        continue;
      }
      const band = casts.get(piece.dtype) ?? castBytes(raw, sourceDtype, piece.dtype);
      casts.set(piece.dtype, band);
      const itemSize = dtypeBytes(piece.dtype);
      const expected: ExpectedRows = { bytes: band, at: ((from - row) * view.cols + s.col) * itemSize, stride: view.cols * itemSize, cycle: Infinity };
      note(await comparePieceRows(piece, from - s.row, to - from, expected, files, buffers));
    }
  }
  for (const piece of check.pieces.filter((p) => p.segment.repeat !== undefined && pending(p))) {
    // vocab padding: the source rows, repeated down the stored rows
    const s = piece.segment.src;
    const bytes = castBytes(await space.readRect(check.source, s), sourceDtype, piece.dtype);
    const width = s.cols * dtypeBytes(piece.dtype);
    note(await comparePieceRows(piece, 0, piece.segment.dst.rows, { bytes, at: 0, stride: width, cycle: s.rows }, files, buffers));
  }
  return [...found.values()];
}

/** Where the expected bytes of a piece's rows lie: row i at `at + (i % cycle) * stride` of `bytes`. */
interface ExpectedRows {
  readonly bytes: Uint8Array;
  readonly at: number;
  readonly stride: number;
  readonly cycle: number;
}

/**
 * Compares `count` rows of a stored piece, from its row `first` on, with the expected rows. The
 * stored rows are read in chunks; where both sides are whole rows laid end to end, a chunk is
 * one comparison, else one per row.
 */
async function comparePieceRows(
  piece: StoredPiece,
  first: number,
  count: number,
  expected: ExpectedRows,
  files: RankFiles,
  buffers: CompareBuffers,
): Promise<PieceDifference | undefined> {
  const itemSize = dtypeBytes(piece.dtype);
  const d = piece.segment.dst;
  const storedRow = piece.view.cols * itemSize;
  const width = d.cols * itemSize;
  const chunkRows = Math.max(1, Math.floor(STORED_CHUNK_BYTES / storedRow));
  const contiguous = width === storedRow && width === expected.stride && expected.cycle === Infinity;
  const want = expected.bytes;
  return files.with(piece.path, async (source) => {
    for (let done = 0; done < count; done += chunkRows) {
      const rows = Math.min(chunkRows, count - done);
      const span = (rows - 1) * storedRow + width;
      buffers.stored = atLeast(buffers.stored, span, Math.max(STORED_CHUNK_BYTES, storedRow));
      const stored = buffers.stored.subarray(0, span);
      const firstRow = d.row + first + done;
      await readInto(source, stored, piece.offset + (firstRow * piece.view.cols + d.col) * itemSize);
      const actual = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
      const lines = contiguous ? 1 : rows;
      const length = contiguous ? rows * width : width;
      for (let i = 0; i < lines; i++) {
        const row = first + done + i;
        const a = i * storedRow;
        const b = expected.at + (expected.cycle === Infinity ? row - first : row % expected.cycle) * expected.stride;
        if (actual.compare(want, b, b + length, a, a + length) !== 0) {
          const at = firstDifference(actual, a, want, b, length);
          return differenceAt(piece, (firstRow + i) * piece.view.cols + d.col + Math.floor(at / itemSize));
        }
      }
    }
    return undefined;
  });
}

function differenceAt(piece: StoredPiece, element: number): PieceDifference {
  const { cols } = piece.view;
  return {
    label: piece.label,
    key: piece.key,
    element,
    problem: `bytes differ from element ${element} on (row ${Math.floor(element / cols)}, col ${element % cols}); that element comes from ${locateElement(element, piece.view, piece.segments)}`,
  };
}

async function readInto(source: ByteSource, target: Uint8Array, offset: number): Promise<void> {
  if (source.readInto === undefined) {
    target.set(await source.read(offset, target.byteLength));
  } else {
    await source.readInto(target, offset);
  }
}

function firstDifference(a: Uint8Array, aAt: number, b: Uint8Array, bAt: number, length: number): number {
  for (let i = 0; i < length; i++) {
    if (a[aAt + i] !== b[bAt + i]) {
      return i;
    }
  }
  return length;
}
