import type { Observable, Subscription } from 'rxjs';
import { OptionError } from '../core/errors.ts';
import { Valve } from '../core/valve.ts';

/** Where a pull queue stands in its endless sequence of epochs: a resumed run starts here. */
export interface StreamPosition {
  /** How many times the source has been restarted from its beginning. */
  epoch: number;
  /** Items taken from the current epoch. */
  index: number;
}

/** Options of a pull queue. */
export interface PullQueueOptions {
  /** Items held before the valve closes and the source pauses. Default 2. */
  highWaterMark?: number;
  /** Start here instead of at the beginning: the first `index` items of `epoch` are skipped. */
  resumeFrom?: StreamPosition;
  /** Stop after this many epochs (default: never; the source restarts forever). */
  maxEpochs?: number;
}

/**
 * Turns a push-based source into an on-demand one: the trainer awaits `next()` when it is ready for the next
 * batch, and nothing queues up without bound, because the queue closes the shared valve at `highWaterMark` and
 * the source (ffmpeg, a file reader) pauses until it reopens.
 *
 * `makeSource(epoch, valve)` builds epoch `epoch`'s stream; it must be deterministic for a given epoch so that
 * a resumed run can skip exactly the items it had already taken.
 */
export class PullQueue<T> {
  readonly valve = new Valve();
  #items: T[] = [];
  #waiting: { resolve: (item: T | undefined) => void; reject: (error: unknown) => void } | undefined;
  #error: unknown;
  #state: 'running' | 'epoch-ended' | 'finished' = 'running';
  #subscription: Subscription | undefined;
  #position: StreamPosition;
  #emptyEpochs = 0;
  readonly #highWaterMark: number;
  readonly #maxEpochs: number;

  constructor(
    private readonly makeSource: (epoch: number, valve: Valve) => Observable<T>,
    options: PullQueueOptions = {},
  ) {
    this.#highWaterMark = options.highWaterMark ?? 2;
    if (!Number.isInteger(this.#highWaterMark) || this.#highWaterMark < 1) {
      throw new OptionError('highWaterMark', options.highWaterMark, 'a positive integer');
    }
    this.#maxEpochs = options.maxEpochs ?? Infinity;
    this.#position = { ...(options.resumeFrom ?? { epoch: 0, index: 0 }) };
    this.#subscribe(this.#position.index);
  }

  /** The position of the next item `next()` will return. */
  get position(): StreamPosition {
    return { ...this.#position };
  }

  /** Items buffered now (for memory tests). */
  get buffered(): number {
    return this.#items.length;
  }

  /** The next item, or `undefined` once the source is exhausted (`maxEpochs` reached). Errors reject. */
  next(): Promise<T | undefined> {
    if (this.#waiting) throw new Error('PullQueue.next() called again before the previous call resolved');
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#deliver();
    });
  }

  /**
   * Gives up a pending `next()`, which then resolves `undefined` without taking an item, so `position` stays
   * that of the next item (a run stopped while waiting for data checkpoints an exact position).
   */
  cancelPending(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve(undefined);
  }

  /** Returns the item `next()` just gave to the front of the queue, as if it had not been taken. */
  putBack(item: T): void {
    this.#items.unshift(item);
    this.#position.index--;
  }

  /** Stops the source (kills ffmpeg and the like). */
  close(): void {
    this.#state = 'finished';
    this.#subscription?.unsubscribe();
    this.valve.open();
    this.#deliver();
  }

  #deliver(): void {
    const waiting = this.#waiting;
    if (!waiting) return;
    if (this.#items.length > 0) {
      this.#waiting = undefined;
      const item = this.#items.shift()!;
      this.#position.index++;
      if (this.#items.length < this.#highWaterMark) this.valve.open();
      waiting.resolve(item);
    } else if (this.#error !== undefined) {
      this.#waiting = undefined;
      waiting.reject(this.#error);
    } else if (this.#state === 'finished') {
      this.#waiting = undefined;
      waiting.resolve(undefined);
    } else if (this.#state === 'epoch-ended') {
      // The next epoch starts only once every item of this one was taken, so `position` stays exact.
      this.#position = { epoch: this.#position.epoch + 1, index: 0 };
      this.#state = 'running';
      this.#subscribe(0);
    }
  }

  #subscribe(skip: number): void {
    let seen = 0;
    let emitted = 0;
    const epoch = this.#position.epoch;
    this.#subscription = this.makeSource(epoch, this.valve).subscribe({
      next: (item) => {
        if (seen++ < skip) return;
        emitted++;
        this.#items.push(item);
        if (this.#items.length >= this.#highWaterMark) this.valve.close();
        this.#deliver();
      },
      error: (error) => {
        this.#error = error;
        this.#deliver();
      },
      complete: () => {
        if (this.#state === 'finished') return;
        // An epoch that yields nothing twice running would loop forever: end instead.
        this.#emptyEpochs = emitted === 0 ? this.#emptyEpochs + 1 : 0;
        const last = epoch + 1 >= this.#maxEpochs || this.#emptyEpochs >= 2;
        this.#state = last ? 'finished' : 'epoch-ended';
        this.#deliver();
      },
    });
  }
}
