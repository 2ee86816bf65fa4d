/**
 * Keeps up to `depth` items of `source` requested ahead of the consumer, so reading the next
 * piece overlaps writing the current one. Errors surface in order.
 */
export async function* prefetch<T>(source: AsyncIterable<T>, depth = 2): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  const queue: Promise<IteratorResult<T>>[] = [];
  const fill = () => {
    while (queue.length < depth) {
      const next = iterator.next();
      next.catch(() => undefined);
      queue.push(next);
    }
  };
  try {
    fill();
    for (;;) {
      const result = await (queue.shift() as Promise<IteratorResult<T>>);
      if (result.done === true) {
        return;
      }
      fill();
      yield result.value;
    }
  } finally {
    await iterator.return?.();
  }
}
