import { map, type OperatorFunction } from 'rxjs';
import { OptionError } from '../core/errors.ts';
import type { Frame } from './frame.ts';

/** A window of frames with its motion score. */
export interface MotionWindow<F extends Frame = Frame> {
  readonly frames: F[];
  /** `motionScore(frames)`, in [0, 1]. */
  readonly motion: number;
}

/**
 * How much a window moves: the mean absolute difference between consecutive frames, over all pixels and
 * channels, scaled to [0, 1] (0 for a still window or one of a single frame). A cheap stand-in for the optical
 * flow magnitude that Shuffle and Learn (Misra et al., ECCV 2016) uses to pick informative windows (the `order`
 * task's sampler scores its windows with it): both are large where things move, but a change of lighting or
 * exposure counts as motion here and not in flow.
 *
 * @throws OptionError when the frames differ in size.
 * @example
 * motionScore([blackFrame, whiteFrame]); // 1
 */
export function motionScore(frames: readonly Frame[]): number {
  if (frames.length < 2) return 0;
  let total = 0;
  for (let i = 1; i < frames.length; i++) {
    const a = frames[i - 1]!.data;
    const b = frames[i]!.data;
    if (a.length !== b.length) {
      throw new OptionError(
        'frames',
        `${a.length} and ${b.length} bytes`,
        `frames of one size (decode with a fixed --size)`,
      );
    }
    let sum = 0;
    for (let j = 0; j < a.length; j++) sum += Math.abs(a[j]! - b[j]!);
    total += sum / (a.length * 255);
  }
  return total / (frames.length - 1);
}

/**
 * Attaches `motionScore` to each window.
 *
 * @example
 * frames$.pipe(windowFrames({ size: 5 }), scoreMotion(), preferMotion({ rng }));
 */
export function scoreMotion<F extends Frame>(): OperatorFunction<F[], MotionWindow<F>> {
  return map((frames) => ({ frames, motion: motionScore(frames) }));
}
