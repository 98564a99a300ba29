import { Observable, Subscription, type Observer, type OperatorFunction, type Subscriber } from 'rxjs';

/** What one subscription of an {@link operate} operator does with its input. */
export interface OperatorHandlers<T> {
  /** Takes one input item; may emit downstream. A throw errors the output and unsubscribes the input. */
  next(item: T): void;
  /**
   * The input completed: emit what is still held. The output completes after it, unless it was closed meanwhile. A
   * throw errors the output instead. Default: nothing to flush.
   */
  complete?(): void;
  /**
   * Runs once when the subscription ends, whichever way (completion, error or unsubscription), after the input is
   * unsubscribed: free buffers here.
   */
  finalize?(): void;
}

/**
 * Writes a stateful operator once, as RxJS does its own with `operate` and `OperatorSubscriber`: `init` runs once
 * per subscription (each subscriber gets its own state, a resubscription starts clean) and returns what to do with
 * each item, on completion and at the end. The helper does the rest: an input error travels downstream; a throw
 * in a handler errors the output; the output completes after `complete` has flushed; an output that closes
 * (downstream `take`, unsubscription, error) unsubscribes the input at once, stops the handlers, even under a
 * synchronous source, and runs `finalize`.
 *
 * @example
 * // Running sums: [1, 2, 3] -> [1, 3, 6].
 * operate<number, number>((subscriber) => {
 *   let sum = 0;
 *   return { next: (n) => subscriber.next((sum += n)), finalize: () => (sum = 0) };
 * });
 */
export function operate<T, R>(init: (subscriber: Subscriber<R>) => OperatorHandlers<T>): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      const input = new OperatorSubscriber(subscriber, init(subscriber));
      // Chained to the output: when it closes, the input closes too (a synchronous source then stops at once).
      subscriber.add(input);
      source.subscribe(input);
    });
}

/**
 * The input side of an {@link operate} operator. Being an Observer and a Subscription, it is used as the source's
 * subscriber itself (RxJS does not wrap it), so a synchronous source sees it closed as soon as the output closes.
 */
class OperatorSubscriber<T, R> extends Subscription implements Observer<T> {
  /** No more notifications are taken: the input ended or the output closed. */
  private stopped = false;

  constructor(
    private readonly destination: Subscriber<R>,
    private readonly handlers: OperatorHandlers<T>,
  ) {
    super();
  }

  next(item: T): void {
    if (this.stopped) return;
    try {
      this.handlers.next(item);
    } catch (err) {
      this.destination.error(err);
    }
  }

  error(err: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    this.destination.error(err);
    this.unsubscribe();
  }

  complete(): void {
    if (this.stopped) return;
    this.stopped = true;
    try {
      this.handlers.complete?.();
      this.destination.complete();
    } catch (err) {
      this.destination.error(err);
    }
    this.unsubscribe();
  }

  override unsubscribe(): void {
    if (this.closed) return;
    this.stopped = true;
    super.unsubscribe();
    this.handlers.finalize?.();
  }
}
