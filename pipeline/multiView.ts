import { Observable, map, type OperatorFunction, type Subscription } from 'rxjs';
import { OptionError, VideoError } from '../core/errors.ts';
import type { Frame } from './frame.ts';
import type { Rng } from '../core/rng.ts';
import type { Valve } from '../core/valve.ts';

/** Options of `alignViews`. */
export interface AlignViewsOptions {
  /** Largest difference in seconds between the timestamps of frames that count as the same moment. */
  tolerance: number;
  /** Frames a view may hold while waiting for the others; past it, its oldest frame is dropped. Default 64. */
  bufferSize?: number;
  /**
   * One valve per view (the one its decoder pauses on), or `undefined` for a view that cannot pause: a view's valve
   * is closed while it holds `bufferSize / 2` frames or more, so a fast decoder waits for the slow ones instead of
   * losing frames past `bufferSize`.
   */
  valves?: ReadonlyArray<Valve | undefined>;
}

/**
 * Aligns N synchronised streams (cameras filming the same scene, as in Time-Contrastive Networks, Sermanet et al.
 * 2018) by timestamp: emits `[frame of view 0, ..., frame of view N-1]` whose timestamps lie within `tolerance`
 * seconds of each other. A frame that cannot be matched (another view has already moved past it) is dropped.
 * Each view must emit frames in increasing timestamp order. Completes when a view has completed and has nothing
 * left to match (streams of different lengths give the moments they share; a view that ends early or is empty ends
 * the output); errors of any view pass through. A frame whose timestamp is not a number (a container that states no
 * frame rate decodes to NaN timestamps) ends the output with a `VideoError` naming its source and the fix, since
 * such frames cannot be put in time. Memory: at most `bufferSize` frames per view.
 *
 * @example
 * alignViews([decodeFrames(left, opts), decodeFrames(right, opts)], { tolerance: 0.02 });
 */
export function alignViews<F extends Frame>(
  views: ReadonlyArray<Observable<F>>,
  options: AlignViewsOptions,
): Observable<F[]> {
  const { tolerance, bufferSize = 64, valves = [] } = options;
  if (views.length < 1) throw new OptionError('views', views.length, 'at least one stream');
  if (!(tolerance >= 0 && Number.isFinite(tolerance)))
    throw new OptionError('tolerance', tolerance, 'a non-negative number of seconds, e.g. half the frame interval');
  if (!Number.isInteger(bufferSize) || bufferSize < 1)
    throw new OptionError('bufferSize', bufferSize, 'a positive integer');
  if (valves.length > views.length)
    throw new OptionError('valves', `${valves.length} valves`, `at most one valve per view (${views.length} views)`);
  const highWater = Math.max(1, Math.floor(bufferSize / 2));
  return new Observable<F[]>((subscriber) => {
    let queues: F[][] = views.map(() => []);
    const done = views.map(() => false);
    const subscriptions: Subscription[] = [];
    let draining = false;

    // Open the valve of every view that holds less than the high-water mark, close the others.
    const regulate = (): void => {
      queues.forEach((q, i) => {
        const valve = valves[i];
        if (!valve) return;
        if (q.length >= highWater) valve.close();
        else valve.open();
      });
    };

    // Every pass either emits a tuple (one frame off each queue) or drops at least one head that can never be
    // matched, so the loop ends; timestamps are known to be numbers (checked on arrival), without which the
    // comparisons below would all be false and nothing would ever leave the queues.
    const drainQueues = (): void => {
      while (!subscriber.closed) {
        if (queues.some((q, i) => q.length === 0 && done[i])) {
          subscriber.complete();
          return;
        }
        if (queues.some((q) => q.length === 0)) return;
        let latest = -Infinity;
        for (const q of queues) latest = Math.max(latest, q[0]!.timestamp);
        if (queues.every((q) => q[0]!.timestamp >= latest - tolerance)) {
          subscriber.next(queues.map((q) => q.shift()!));
          continue;
        }
        // A head older than the latest head by more than the tolerance can never be matched.
        for (const q of queues) if (q[0]!.timestamp < latest - tolerance) q.shift();
      }
    };
    // Not re-entrant: emitting or opening a valve can make a view emit synchronously; its frame is only queued
    // and the running loop takes it.
    const drain = (): void => {
      if (draining) return;
      draining = true;
      try {
        drainQueues();
      } finally {
        draining = false;
      }
      if (!subscriber.closed) regulate();
    };

    views.forEach((view, i) => {
      if (subscriber.closed) return;
      subscriptions.push(
        view.subscribe({
          next(frame) {
            if (Number.isNaN(frame.timestamp)) {
              subscriber.error(
                new VideoError(
                  `${frame.source}: frame ${frame.index} has no timestamp (the container states no frame rate), so its views cannot be aligned in time: resample every view to one rate (--fps, or decodeFrames' fps option)`,
                  frame.source,
                ),
              );
              return;
            }
            const queue = queues[i]!;
            queue.push(frame);
            if (queue.length > bufferSize) queue.shift();
            drain();
          },
          error: (err) => subscriber.error(err),
          complete() {
            done[i] = true;
            drain();
          },
        }),
      );
    });
    return () => {
      for (const s of subscriptions) s.unsubscribe();
      // A view left paused would keep its decoder waiting after the output has gone.
      for (const valve of valves) valve?.open();
      queues = [];
    };
  });
}

/** A frame that is one view of a moment. */
export type ViewFrame = Frame & {
  /** 0-based view number. */
  readonly view: number;
  /** The crop it was cut from, in source pixels: `[x, y, width, height]`. */
  readonly crop: readonly [number, number, number, number];
};

/** Options of `syntheticViews`. */
export interface SyntheticViewsOptions {
  /** Views per frame. */
  count: number;
  /** Draws the crops. */
  rng: Rng;
  /** Side of a crop as a fraction of the frame's side, one value or a `[min, max]` range drawn per view, in (0, 1]. Default `[0.5, 0.9]`. */
  cropFraction?: number | readonly [number, number];
}

/**
 * Makes N views of each frame from a single video: random crops of the same moment, resized back (bilinear) to
 * the frame's size, a stand-in for several cameras when only one is at hand. Emits `ViewFrame[]` of length
 * `count`, each with the source frame's index, timestamp and source.
 *
 * @example
 * frames$.pipe(syntheticViews({ count: 2, rng: new Rng(4), cropFraction: [0.6, 0.9] }));
 */
export function syntheticViews(options: SyntheticViewsOptions): OperatorFunction<Frame, ViewFrame[]> {
  const { count, rng, cropFraction = [0.5, 0.9] } = options;
  if (!Number.isInteger(count) || count < 1) throw new OptionError('count', count, 'a positive integer');
  const [lo, hi] = typeof cropFraction === 'number' ? [cropFraction, cropFraction] : cropFraction;
  if (!(lo > 0 && lo <= hi && hi <= 1))
    throw new OptionError(
      'cropFraction',
      cropFraction,
      'a fraction in (0, 1] or a [min, max] range with 0 < min <= max <= 1',
    );
  return map((frame) =>
    Array.from({ length: count }, (_, view) => {
      const side = rng.uniform(lo, hi);
      const w = Math.max(1, Math.round(side * frame.width));
      const h = Math.max(1, Math.round(side * frame.height));
      const crop = [rng.int(frame.width - w + 1), rng.int(frame.height - h + 1), w, h] as const;
      return { ...frame, data: cropResize(frame, crop), view, crop };
    }),
  );
}

/** Bilinear resize of `crop` (`[x, y, w, h]`) to the frame's own size, sampling at pixel centres. */
export function cropResize(frame: Frame, crop: readonly [number, number, number, number]): Uint8Array {
  const { data, width, height, channels } = frame;
  const [cx, cy, cw, ch] = crop;
  const out = new Uint8Array(width * height * channels);
  const sx = cw / width;
  const sy = ch / height;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), ch - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, ch - 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), cw - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, cw - 1);
      const wx = fx - x0;
      const p00 = ((cy + y0) * width + cx + x0) * channels;
      const p01 = ((cy + y0) * width + cx + x1) * channels;
      const p10 = ((cy + y1) * width + cx + x0) * channels;
      const p11 = ((cy + y1) * width + cx + x1) * channels;
      const o = (y * width + x) * channels;
      for (let c = 0; c < channels; c++) {
        const top = data[p00 + c]! * (1 - wx) + data[p01 + c]! * wx;
        const bottom = data[p10 + c]! * (1 - wx) + data[p11 + c]! * wx;
        out[o + c] = Math.round(top * (1 - wy) + bottom * wy);
      }
    }
  }
  return out;
}
