import type { OperatorFunction } from 'rxjs';
import { OptionError } from '../core/errors.ts';
import { operate } from '../core/operate.ts';
import type { Frame } from './frame.ts';

/** Options of `windowFrames`. */
export interface WindowFramesOptions {
  /** Frames in a window (T). */
  size: number;
  /** Input frames between the starts of two windows. Default `size` (windows touch but do not overlap when `step` is 1). */
  stride?: number;
  /** Input frames between two frames of one window, to cover more time with the same T. Default 1. */
  step?: number;
  /**
   * Never let a window span a scene cut: start afresh at each new `scene` id. Needs `detectSceneCuts()` upstream;
   * a frame without a `scene` id fails the stream with an OptionError.
   */
  withinScene?: boolean;
}

/**
 * Cuts a frame stream into windows of `size` frames, `step` frames apart inside a window, a new window starting
 * every `stride` frames. Windows never span two videos: the window state restarts when `frame.source` changes
 * (and, with `withinScene`, when `frame.scene` changes); a segment shorter than one window gives no window.
 * Memory is one ring buffer of `(size - 1) * step + 1` frames.
 *
 * @example
 * frames$.pipe(windowFrames({ size: 4, stride: 8, step: 2 })); // frames 0,2,4,6 then 8,10,12,14 ...
 */
export function windowFrames<F extends Frame>(options: WindowFramesOptions): OperatorFunction<F, F[]> {
  const { size, stride = options.size, step = 1, withinScene = false } = options;
  for (const [name, value] of [
    ['size', size],
    ['stride', stride],
    ['step', step],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) throw new OptionError(name, value, 'a positive integer');
  }
  const span = (size - 1) * step + 1;
  return operate<F, F[]>((subscriber) => {
    let ring: Array<F | undefined> = new Array(span);
    let seen = 0;
    let segment: string | undefined;
    const next = (frame: F): void => {
      const scene = (frame as Partial<{ scene: number }>).scene;
      if (withinScene && typeof scene !== 'number') {
        throw new OptionError(
          'withinScene',
          true,
          `used after detectSceneCuts(), which tags frames with a scene id; frame ${frame.index} of ${frame.source} has none`,
        );
      }
      const key = withinScene ? `${scene}\u0000${frame.source}` : frame.source;
      if (key !== segment) {
        segment = key;
        seen = 0;
        ring.fill(undefined);
      }
      ring[seen % span] = frame;
      seen++;
      const start = seen - span;
      if (start < 0 || start % stride !== 0) return;
      const window = new Array<F>(size);
      for (let k = 0; k < size; k++) window[k] = ring[(start + k * step) % span]!;
      subscriber.next(window);
    };
    return { next, finalize: () => (ring = []) };
  });
}
