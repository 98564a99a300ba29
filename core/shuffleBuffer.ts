import type { OperatorFunction } from 'rxjs';
import { OptionError } from './errors.ts';
import { operate } from './operate.ts';
import type { Rng } from './rng.ts';

/** Options of `shuffleBuffer`. */
export interface ShuffleBufferOptions {
  /** Draws which buffered item leaves next; the same seed and input order give the same output order. */
  rng: Rng;
  /** Items held at most. Larger mixes further apart; 1 keeps the input order. */
  bufferSize: number;
}

/**
 * A bounded shuffle, as `tf.data.Dataset.shuffle` does it: fill a buffer of `bufferSize` items, then for each new
 * item emit a random buffered one and put the new one in its place; on completion emit the rest in random order.
 * Memory is `bufferSize` items whatever the stream's length.
 *
 * @example
 * from([1, 2, 3, 4]).pipe(shuffleBuffer({ rng: new Rng(1), bufferSize: 2 }));
 */
export function shuffleBuffer<T>(options: ShuffleBufferOptions): OperatorFunction<T, T> {
  const { rng, bufferSize } = options;
  if (!Number.isInteger(bufferSize) || bufferSize < 1) {
    throw new OptionError('bufferSize', bufferSize, 'a positive integer (1 keeps the input order)');
  }
  return operate<T, T>((subscriber) => {
    let buffer: T[] = [];
    const next = (item: T): void => {
      if (buffer.length < bufferSize) {
        buffer.push(item);
        return;
      }
      const j = rng.int(bufferSize);
      const out = buffer[j]!;
      buffer[j] = item;
      subscriber.next(out);
    };
    const complete = (): void => {
      const rest = rng.shuffle(buffer);
      buffer = [];
      for (const item of rest) {
        if (subscriber.closed) return;
        subscriber.next(item);
      }
    };
    return { next, complete, finalize: () => (buffer = []) };
  });
}
