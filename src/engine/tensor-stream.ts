import { castBytes, canCast, UnsupportedCastError } from "./cast.js";
import { bandedBytes } from "./banded.js";
import { atLeast } from "./grow-buffer.js";
import { prefetch } from "./prefetch.js";
import type { SourceSpace } from "./source-space.js";
import { transposeMatrix } from "./transpose.js";
import type { MatrixView, Rect, Segment } from "../mapping/rect.js";
import { dtypeBytes, type Dtype } from "../model/tensor.js";

/**
 * Largest piece read and yielded at once when a tensor streams band by band: small enough that
 * a band is still in the CPU caches when it is compared or written (measured by `npm run bench`
 * on its 1.1 GiB model against 8 MiB bands: verify 2.7 s -> 1.4 s, hf2mcore 10% faster, peak RSS
 * 185 -> 100 MiB; 64 KiB costs more in calls than it saves).
 */
const STREAM_BAND_BYTES = 256 << 10;
/** Buffers a reusing stream rotates through: the one yielded, the one prefetched, one spare. */
const POOL_SIZE = 3;

export interface StreamOptions {
  /**
   * Read bands into this ring of reused buffers. Only for a consumer that is done with a chunk
   * when it asks for the next but one (writers that copy or write it, comparers), and that
   * streams its tensors one after another; it spares the page faults and GC of a fresh buffer
   * per band.
   */
  readonly pool?: BandPool;
}

/** A ring of band buffers, each grown to the largest band it has held (at most STREAM_BAND_BYTES). */
export class BandPool {
  private readonly buffers: Uint8Array[] = [];
  private next = 0;

  take(bytes: number): Uint8Array | undefined {
    if (bytes > STREAM_BAND_BYTES) {
      return undefined;
    }
    const i = this.next;
    this.next = (this.next + 1) % POOL_SIZE;
    const buffer = atLeast(this.buffers[i], bytes, STREAM_BAND_BYTES, 64 << 10);
    this.buffers[i] = buffer;
    return buffer;
  }
}

/** What the engine needs to know of a planned tensor (plan entries and HF outputs alike). */
export interface TensorRecipe {
  readonly name: string;
  readonly dtype: Dtype;
  readonly view: MatrixView;
  readonly segments: readonly Segment[];
}

/**
 * The bytes of a tensor, row-major, in order. When every segment is full-width, untransposed
 * and the segments tile the rows in order, the tensor streams segment by segment in bands;
 * untransposed side-by-side pieces are filled band by band; only a tensor with transposed
 * pieces (legacy GroupedMLP) is assembled in one buffer (at most the tensor's size).
 */
export function tensorBytes(recipe: TensorRecipe, space: SourceSpace, options: StreamOptions = {}): AsyncGenerator<Uint8Array> {
  return prefetch(rawTensorBytes(recipe, space, options.pool), POOL_SIZE - 1);
}

async function* rawTensorBytes(recipe: TensorRecipe, space: SourceSpace, pool: BandPool | undefined): AsyncGenerator<Uint8Array> {
  const sourceDtype = commonSourceDtype(recipe, space);
  if (!canCast(sourceDtype, recipe.dtype)) {
    throw new UnsupportedCastError(recipe.name, sourceDtype, recipe.dtype);
  }
  const cast = (bytes: Uint8Array): Uint8Array => castBytes(bytes, sourceDtype, recipe.dtype);
  if (streamable(recipe)) {
    for (const seg of [...recipe.segments].sort((a, b) => a.dst.row - b.dst.row)) {
      yield* streamSegment(seg, recipe.view, dtypeBytes(sourceDtype), space, cast, pool);
    }
    return;
  }
  if (recipe.segments.every((s) => !s.transposed)) {
    const take = (bytes: number) => pool?.take(bytes);
    for await (const band of bandedBytes(recipe.segments, recipe.view, dtypeBytes(sourceDtype), space, STREAM_BAND_BYTES, take)) {
      yield cast(band);
    }
    return;
  }
  yield cast(await assemble(recipe, space, dtypeBytes(sourceDtype)));
}

function commonSourceDtype(recipe: TensorRecipe, space: SourceSpace): Dtype {
  const dtypes = new Set(recipe.segments.map((s) => space.describe(s.source).dtype));
  if (dtypes.size > 1) {
    throw new Error(`internal: tensor ${recipe.name} combines sources of dtypes ${[...dtypes].join(", ")}`);
  }
  return dtypes.values().next().value ?? recipe.dtype;
}

function streamable(recipe: TensorRecipe): boolean {
  let row = 0;
  const sorted = [...recipe.segments].sort((a, b) => a.dst.row - b.dst.row);
  for (const s of sorted) {
    if (s.transposed || s.dst.col !== 0 || s.dst.cols !== recipe.view.cols || s.dst.row !== row) {
      return false;
    }
    row += s.dst.rows;
  }
  return row === recipe.view.rows;
}

async function* streamSegment(
  seg: Segment,
  view: MatrixView,
  itemSize: number,
  space: SourceSpace,
  cast: (b: Uint8Array) => Uint8Array,
  pool: BandPool | undefined,
): AsyncGenerator<Uint8Array> {
  const rowBytes = view.cols * itemSize;
  if (seg.repeat !== undefined) {
    const one = cast(await space.readRect(seg.source, seg.src));
    const perBand = Math.max(1, Math.floor(STREAM_BAND_BYTES / Math.max(1, one.byteLength)));
    for (let done = 0; done < seg.repeat; done += perBand) {
      const count = Math.min(perBand, seg.repeat - done);
      const band = new Uint8Array(count * one.byteLength);
      for (let i = 0; i < count; i++) {
        band.set(one, i * one.byteLength);
      }
      yield band;
    }
    return;
  }
  const band = Math.max(1, Math.floor(STREAM_BAND_BYTES / Math.max(1, rowBytes)));
  for (let r = 0; r < seg.src.rows; r += band) {
    const rect: Rect = { ...seg.src, row: seg.src.row + r, rows: Math.min(band, seg.src.rows - r) };
    yield cast(await space.readRect(seg.source, rect, pool?.take(rect.rows * rect.cols * itemSize)));
  }
}

async function assemble(recipe: TensorRecipe, space: SourceSpace, itemSize: number): Promise<Uint8Array> {
  const { view } = recipe;
  const out = new Uint8Array(view.rows * view.cols * itemSize);
  for (const seg of recipe.segments) {
    let bytes = await space.readRect(seg.source, seg.src);
    if (seg.transposed) {
      bytes = transposeMatrix(bytes, seg.src.rows, seg.src.cols, itemSize);
    }
    const repeat = seg.repeat ?? 1;
    const rows = seg.repeat === undefined ? seg.dst.rows : seg.src.rows;
    const rowBytes = seg.dst.cols * itemSize;
    for (let k = 0; k < repeat; k++) {
      for (let r = 0; r < rows; r++) {
        const to = ((seg.dst.row + k * rows + r) * view.cols + seg.dst.col) * itemSize;
        out.set(bytes.subarray(r * rowBytes, (r + 1) * rowBytes), to);
      }
    }
  }
  return out;
}
