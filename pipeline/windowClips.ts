import { map, pipe, type OperatorFunction } from 'rxjs';
import { OptionError } from '../core/errors.ts';
import type { Frame } from './frame.ts';
import { windowFrames } from './windowFrames.ts';

/** Options of `windowClips`. */
export interface WindowClipsOptions {
  /** Clips in a tuple (n). */
  clips: number;
  /** Frames in a clip (taken frames, see `step`). */
  clipLength: number;
  /** Frames left out between the end of one clip and the start of the next (taken frames). Default 0. */
  interval?: number;
  /** Input frames between two taken frames, to cover more time with the same clip length. Default 1. */
  step?: number;
  /** Input frames between the starts of two tuples. Default: the input frames a tuple covers, so tuples touch. */
  stride?: number;
  /** Never let a tuple span a scene cut (needs `detectSceneCuts()` upstream, as `windowFrames`). */
  withinScene?: boolean;
}

/** Taken frames a tuple spans: `n` clips of `clipLength` with `interval` frames between consecutive clips. */
export function tupleSpan(clips: number, clipLength: number, interval = 0): number {
  return clips * clipLength + (clips - 1) * interval;
}

/**
 * Cuts a window of `tupleSpan(clips, clipLength, interval)` frames into `clips` clips of `clipLength` frames, in
 * temporal order, leaving `interval` frames out between consecutive clips.
 *
 * @throws OptionError when the window is not exactly one tuple long.
 * @example
 * splitClips(frames0to9, 3, 2, 2); // [[0, 1], [4, 5], [8, 9]]
 */
export function splitClips<F>(window: readonly F[], clips: number, clipLength: number, interval = 0): F[][] {
  const span = tupleSpan(clips, clipLength, interval);
  if (window.length !== span)
    throw new OptionError(
      'window',
      `${window.length} frames`,
      `${span} frames (${clips} clips of ${clipLength} + gaps)`,
    );
  return Array.from({ length: clips }, (_, i) => {
    const start = i * (clipLength + interval);
    return window.slice(start, start + clipLength);
  });
}

/**
 * Cuts a frame stream into tuples of `clips` clips of `clipLength` consecutive taken frames with `interval` frames
 * between clips (the sampling of Xu et al., CVPR 2019: 3 clips of 16 frames, 8 frames apart), a new tuple every
 * `stride` input frames. A tuple never spans two videos (nor two scenes with `withinScene`): `windowFrames` cuts
 * the window it is made from. Emits the clips in temporal order, `Frame[][]` `[clips][clipLength]`.
 *
 * @example
 * frames$.pipe(windowClips({ clips: 3, clipLength: 4, interval: 2, stride: 4 })); // [[0..3], [6..9], [12..15]] ...
 */
export function windowClips<F extends Frame>(options: WindowClipsOptions): OperatorFunction<F, F[][]> {
  const { clips, clipLength, interval = 0, step = 1, withinScene = false } = options;
  for (const [name, value] of [
    ['clips', clips],
    ['clipLength', clipLength],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) throw new OptionError(name, value, 'a positive integer');
  }
  if (!Number.isInteger(interval) || interval < 0) throw new OptionError('interval', interval, 'an integer >= 0');
  const span = tupleSpan(clips, clipLength, interval);
  return pipe(
    windowFrames<F>({ size: span, step, stride: options.stride ?? (span - 1) * step + 1, withinScene }),
    map((window) => splitClips(window, clips, clipLength, interval)),
  );
}
