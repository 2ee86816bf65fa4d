/**
 * Transposes a row-major [rows, cols] matrix of `itemSize`-byte elements, in cache-friendly tiles.
 * Works on the integer view of the element size so no value is decoded.
 */
export function transposeMatrix(src: Uint8Array, rows: number, cols: number, itemSize: number): Uint8Array {
  if (itemSize === 8) {
    // Two 32-bit words per element: transposing the [rows, cols, 2] words keeps the bits exact.
    return transposeWords(src, rows, cols, 2);
  }
  return transposeWords(src, rows, cols, 1, itemSize);
}

function transposeWords(src: Uint8Array, rows: number, cols: number, words: number, itemSize = 4): Uint8Array {
  const out = new Uint8Array(src.byteLength);
  const a = typedView(src, itemSize);
  const b = typedView(out, itemSize);
  const tile = 64;
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const r1 = Math.min(rows, r0 + tile);
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const c1 = Math.min(cols, c0 + tile);
      for (let r = r0; r < r1; r++) {
        const rowBase = r * cols;
        for (let c = c0; c < c1; c++) {
          for (let w = 0; w < words; w++) {
            b[(c * rows + r) * words + w] = a[(rowBase + c) * words + w] as number;
          }
        }
      }
    }
  }
  return out;
}

type IntArray = Uint8Array | Uint16Array | Uint32Array;

function typedView(bytes: Uint8Array, itemSize: number): IntArray {
  const aligned = bytes.byteOffset % itemSize === 0 ? bytes : bytes.slice();
  const count = aligned.byteLength / itemSize;
  switch (itemSize) {
    case 1:
      return aligned;
    case 2:
      return new Uint16Array(aligned.buffer, aligned.byteOffset, count);
    case 4:
      return new Uint32Array(aligned.buffer, aligned.byteOffset, count);
    default:
      throw new Error(`cannot transpose elements of ${itemSize} bytes`);
  }
}
