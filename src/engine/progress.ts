/** What the engine reports while it works; only the CLI draws it. */
export type ProgressEvent =
  | { readonly kind: "plan"; readonly files: number; readonly totalBytes: number }
  | { readonly kind: "bytes"; readonly file: string; readonly bytes: number }
  | { readonly kind: "file-done"; readonly file: string }
  | { readonly kind: "done"; readonly seconds: number };

export type ProgressListener = (event: ProgressEvent) => void;

export const noProgress: ProgressListener = () => undefined;

/** Wraps a byte stream so that every chunk is reported. */
export async function* counted(
  chunks: AsyncIterable<Uint8Array>,
  file: string,
  onProgress: ProgressListener,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    onProgress({ kind: "bytes", file, bytes: chunk.byteLength });
    yield chunk;
  }
}
