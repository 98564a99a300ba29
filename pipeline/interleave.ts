import { Observable, type Subscription } from 'rxjs';
import { OptionError } from '../core/errors.ts';
import type { Rng } from '../core/rng.ts';
import { shuffleBuffer } from '../core/shuffleBuffer.ts';
import type { Valve } from '../core/valve.ts';

/** Options of `interleave`. */
export interface InterleaveOptions {
  /** Seeds the shuffle buffer. */
  rng: Rng;
  /** Items in the shuffle buffer. Default 256. */
  bufferSize?: number;
  /** Items a source may queue ahead of its turn before its valve (if given) is closed. Default 64. */
  queueSize?: number;
  /** One valve per source (or `undefined` for a source that cannot pause); closed while that source is too far ahead. */
  valves?: ReadonlyArray<Valve | undefined>;
}

/**
 * Mixes the items of several sources: a deterministic round-robin of the sources followed by a seeded shuffle
 * buffer. With sources that each emit a fixed sequence, the output is the same for the same seed, however the
 * sources' emissions interleave in time.
 *
 * Why round-robin and not `merge`: merge emits in arrival order, which depends on decoder speed and the OS
 * scheduler, so the shuffle would differ from run to run. Round-robin takes item k of source 0, then item k of
 * source 1, ..., waiting for a slow source; a source that runs dry leaves the rotation when it completes.
 * Why not `concat` then shuffle: a bounded buffer would then hold items of one source only and never mix videos.
 *
 * Memory: `bufferSize` items plus what fast sources queue while the rotation waits for a slow one. Give `valves`
 * (the ones passed to the decoders) to pause a source that is `queueSize` items ahead.
 *
 * @example
 * interleave([decodeFrames(a, { valve: va }), decodeFrames(b, { valve: vb })], { rng: new Rng(3), valves: [va, vb] });
 */
export function interleave<T>(sources: ReadonlyArray<Observable<T>>, options: InterleaveOptions): Observable<T> {
  const { rng, bufferSize = 256 } = options;
  return roundRobin(sources, options).pipe(shuffleBuffer<T>({ rng, bufferSize }));
}

/** Options of `roundRobin`. */
export type RoundRobinOptions = Pick<InterleaveOptions, 'queueSize' | 'valves'>;

/**
 * Emits one item of each source in turn (source 0, 1, ..., 0, 1, ...), skipping sources that have completed with
 * nothing queued; completes when all have. The output order depends only on what each source emits.
 */
export function roundRobin<T>(sources: ReadonlyArray<Observable<T>>, options: RoundRobinOptions = {}): Observable<T> {
  const { queueSize = 64, valves = [] } = options;
  if (!Number.isInteger(queueSize) || queueSize < 1)
    throw new OptionError('queueSize', queueSize, 'a positive integer');
  if (valves.length > sources.length) {
    throw new OptionError(
      'valves',
      `${valves.length} valves`,
      `at most one valve per source (${sources.length} sources)`,
    );
  }
  return new Observable<T>((subscriber) => {
    let queues: T[][] = sources.map(() => []);
    const done = sources.map(() => false);
    let turn = 0;
    let draining = false;
    const subscriptions: Subscription[] = [];

    // Emits while the source whose turn it is has an item; drops finished sources from the rotation.
    // Not re-entrant: opening a valve (or emitting downstream) can make a paused source emit synchronously,
    // calling back in here before `turn` has advanced. The nested call only queues its item, and the running
    // loop takes it in turn; otherwise the same source would emit twice running and the next lose its turn,
    // an order that would depend on when the decoder happened to be paused.
    const drain = (): void => {
      if (draining) return;
      draining = true;
      try {
        drainQueues();
      } finally {
        draining = false;
      }
    };
    const drainQueues = (): void => {
      for (;;) {
        if (subscriber.closed) return;
        const live = done.some((d, i) => !d || queues[i]!.length > 0);
        if (!live) {
          subscriber.complete();
          return;
        }
        const queue = queues[turn]!;
        if (queue.length > 0) {
          subscriber.next(queue.shift()!);
          if (queue.length < queueSize / 2) valves[turn]?.open();
        } else if (!done[turn]) return;
        turn = (turn + 1) % sources.length;
      }
    };

    sources.forEach((source, i) => {
      if (subscriber.closed) return;
      subscriptions.push(
        source.subscribe({
          next(item) {
            queues[i]!.push(item);
            if (queues[i]!.length >= queueSize) valves[i]?.close();
            drain();
          },
          error(err) {
            subscriber.error(err);
          },
          complete() {
            done[i] = true;
            drain();
          },
        }),
      );
    });
    if (sources.length === 0) subscriber.complete();
    return () => {
      for (const s of subscriptions) s.unsubscribe();
      for (const v of valves) v?.open();
      queues = [];
    };
  });
}
