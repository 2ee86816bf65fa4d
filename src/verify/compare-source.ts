import { castBytes, canCast, UnsupportedCastError } from "../engine/cast.js";
import { atLeast } from "../engine/grow-buffer.js";
import type { SourceSpace } from "../engine/source-space.js";
import { dtypeBytes, type Dtype } from "../model/tensor.js";
import type { SourceCheck, StoredPiece } from "./byte-checks.js";
import { asBuffer, firstDifference, readStored } from "./byte-compare.js";
import { STORED_CHUNK_BYTES } from "./compare-tensor.js";
import { differingElement } from "./locate.js";
import type { OpenFiles } from "./open-files.js";

/**
 * HF rows read at once (and stored bytes, STORED_CHUNK_BYTES). A positional read from the page
 * cache costs microseconds beyond its copy, so pieces of a row-parallel weight (a quarter of each
 * row at TP=4) must not be tiny: on the bench's 1.1 GiB model (2 vCPUs, 7 runs each) checking took
 * 0.60-0.83 s with 256 KiB bands and pieces, 0.51-0.57 s with 1 MiB ones; 2 and 4 MiB were no
 * faster, on a 4.3 GiB model either (1.13-1.16 s). A tensor whose single row is larger is read a
 * row at a time.
 */
const BAND_BYTES = 1 << 20;

/** A stored tensor found different: its first differing element found, and how the report says it. */
export interface PieceDifference {
  readonly label: string;
  readonly key: string;
  readonly element: number;
  readonly problem: string;
}

/** Per stored tensor, the lowest differing element found so far (the one the report names). */
export class LowestDifferences {
  private readonly byTensor = new Map<string, PieceDifference>();

  /** The lowest differing element found in the tensor `key` of rank file `label`; Infinity while none is. */
  at(label: string, key: string): number {
    // most checks find nothing: no key to build then
    return this.byTensor.size === 0 ? Infinity : (this.byTensor.get(tensorId(label, key))?.element ?? Infinity);
  }

  note(d: PieceDifference | undefined): void {
    if (d !== undefined && this.at(d.label, d.key) > d.element) {
      this.byTensor.set(tensorId(d.label, d.key), d);
    }
  }

  values(): PieceDifference[] {
    return [...this.byTensor.values()];
  }
}

/** One stored tensor's id across the rank files: its file's label and its key. */
export function tensorId(label: string, key: string): string {
  return `${label}\0${key}`;
}

/** Buffers reused from one check to the next in one thread: the HF band and a stored chunk. */
export interface CompareBuffers {
  band?: Uint8Array;
  stored?: Uint8Array;
}

/**
 * Checks every piece cut from one HF tensor's rows `check.rows` in one pass over them: those rows
 * are read band by band, and each band is compared with the rows of every stored piece it
 * overlaps, read from the rank files. Reports one difference per stored tensor, at its lowest
 * differing element among these pieces (in these rows).
 */
export async function checkSource(check: SourceCheck, space: SourceSpace, files: OpenFiles, buffers: CompareBuffers): Promise<PieceDifference[]> {
  const { dtype: sourceDtype, view } = space.describe(check.source);
  for (const { stored } of check.pieces) {
    if (!canCast(sourceDtype, stored.tensor.dtype)) {
      throw new UnsupportedCastError(`${stored.label} ${stored.key}`, sourceDtype, stored.tensor.dtype);
    }
  }
  const found = new LowestDifferences();
  /** Whether rows of `piece` from its row `first` on could hold an element below the one found in its tensor. */
  const worth = ({ stored, segment }: StoredPiece, first: number): boolean =>
    found.at(stored.label, stored.key) > (segment.dst.row + first) * stored.tensor.view.cols + segment.dst.col;
  const banded = check.pieces.filter((p) => p.segment.repeat === undefined);
  const rowBytes = view.cols * dtypeBytes(sourceDtype);
  const bandRows = Math.max(1, Math.floor(BAND_BYTES / Math.max(1, rowBytes)));
  const { first, end } = check.rows;
  // every rank file of this HF tensor stays open until it is done (a dense weight's pieces lie in TP x EP files)
  return files.holding(
    check.pieces.map((p) => p.stored.path),
    async () => {
      for (let row = first; row < end; row += bandRows) {
        const rows = Math.min(bandRows, end - row);
        buffers.band = atLeast(buffers.band, rows * rowBytes, Math.max(BAND_BYTES, rowBytes));
        const raw = await space.readRect(check.source, { row, col: 0, rows, cols: view.cols }, buffers.band);
        const casts = new Map<Dtype, Uint8Array>();
        for (const piece of banded) {
          const s = piece.segment.src;
          const from = Math.max(row, s.row);
          const to = Math.min(row + rows, s.row + s.rows);
          if (from >= to || !worth(piece, from - s.row)) {
            continue;
          }
          const { dtype } = piece.stored.tensor;
          const band = casts.get(dtype) ?? castBytes(raw, sourceDtype, dtype);
          casts.set(dtype, band);
          const itemSize = dtypeBytes(dtype);
          const expected: ExpectedRows = { bytes: band, at: ((from - row) * view.cols + s.col) * itemSize, stride: view.cols * itemSize, cycle: Infinity };
          found.note(await comparePieceRows(piece, from - s.row, to - from, expected, files, buffers));
        }
      }
      for (const piece of check.pieces.filter((p) => p.segment.repeat !== undefined && worth(p, 0))) {
        // vocab padding: the source rows, repeated down the stored rows
        const { src, dst } = piece.segment;
        const bytes = castBytes(await space.readRect(check.source, src), sourceDtype, piece.stored.tensor.dtype);
        const width = src.cols * dtypeBytes(piece.stored.tensor.dtype);
        found.note(await comparePieceRows(piece, 0, dst.rows, { bytes, at: 0, stride: width, cycle: src.rows }, files, buffers));
      }
      return found.values();
    },
  );
}

/** Where the expected bytes of a piece's rows lie: row i at `at + (i % cycle) * stride` of `bytes`. */
interface ExpectedRows {
  readonly bytes: Uint8Array;
  readonly at: number;
  readonly stride: number;
  readonly cycle: number;
}

/**
 * Compares `count` rows of a stored piece, from its row `first` on, with the expected rows; the
 * first differing element, if any. The stored rows are read in chunks; where both sides are
 * whole rows laid end to end, a chunk is one comparison, else one per row.
 */
async function comparePieceRows(
  { stored: { tensor, path, label, key }, offset, segment: { dst } }: StoredPiece,
  first: number,
  count: number,
  expected: ExpectedRows,
  files: OpenFiles,
  buffers: CompareBuffers,
): Promise<PieceDifference | undefined> {
  const itemSize = dtypeBytes(tensor.dtype);
  const storedRow = tensor.view.cols * itemSize;
  const width = dst.cols * itemSize;
  const chunkRows = Math.max(1, Math.floor(STORED_CHUNK_BYTES / storedRow));
  const contiguous = width === storedRow && width === expected.stride && expected.cycle === Infinity;
  return files.with(path, async (source) => {
    for (let done = 0; done < count; done += chunkRows) {
      const rows = Math.min(chunkRows, count - done);
      const span = (rows - 1) * storedRow + width;
      buffers.stored = atLeast(buffers.stored, span, Math.max(STORED_CHUNK_BYTES, storedRow));
      const firstRow = dst.row + first + done;
      const actual = asBuffer(await readStored(source, offset + (firstRow * tensor.view.cols + dst.col) * itemSize, buffers.stored.subarray(0, span)));
      const lines = contiguous ? 1 : rows;
      const length = contiguous ? rows * width : width;
      for (let i = 0; i < lines; i++) {
        const row = first + done + i;
        const a = i * storedRow;
        const b = expected.at + (expected.cycle === Infinity ? row - first : row % expected.cycle) * expected.stride;
        const at = firstDifference(actual, a, expected.bytes, b, length);
        if (at < length) {
          const element = (firstRow + i) * tensor.view.cols + dst.col + Math.floor(at / itemSize);
          return { label, key, element, problem: differingElement(element, tensor.view, tensor.segments) };
        }
      }
    }
    return undefined;
  });
}
