import type { OperatorFunction } from 'rxjs';
import { operate } from './operate.ts';

/** What one subscription of a {@link flushingOperator} does with its input. */
export interface Flushing<T> {
  /** Takes one input item; may emit. A throw errors the output. */
  next(item: T): void;
  /** The input completed: emit what is still held (the last group). A throw errors the output. */
  flush(): void;
}

/**
 * An operator that holds items until a boundary and flushes the rest when its input completes: the shape of
 * grouping lines into paragraphs or dialogues and tokens into windows. `start` runs once per subscription, so
 * each subscriber gets its own state (and a resubscription starts clean); `emit` sends a value downstream. A
 * narrowing of {@link operate}, which forwards errors and completion.
 *
 * @example
 * // Runs of equal numbers: [1, 1, 2] -> [[1, 1], [2]].
 * flushingOperator<number, number[]>((emit) => {
 *   let run: number[] = [];
 *   const flush = () => (run.length > 0 && emit(run), (run = []));
 *   return { next: (n) => (run.length > 0 && run[0] !== n && flush(), run.push(n)), flush };
 * });
 */
export function flushingOperator<T, R>(start: (emit: (value: R) => void) => Flushing<T>): OperatorFunction<T, R> {
  return operate<T, R>((subscriber) => {
    const state = start((value) => subscriber.next(value));
    return { next: (item) => state.next(item), complete: () => state.flush() };
  });
}
