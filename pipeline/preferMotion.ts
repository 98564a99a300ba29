import type { OperatorFunction } from 'rxjs';
import { OptionError } from '../core/errors.ts';
import { operate } from '../core/operate.ts';
import type { Frame } from './frame.ts';
import type { MotionWindow } from './motionScore.ts';
import type { Rng } from '../core/rng.ts';

/** Options of `preferMotion`. */
export interface PreferMotionOptions {
  /** Drop every window whose motion is below this, in [0, 1]. Default 0. */
  minScore?: number;
  /** Keep a window when its motion ranks in this top fraction of the video's windows so far, in (0, 1]. Default 0.5. */
  topFraction?: number;
  /** Draws the reservoir replacements, so the selection is reproducible. */
  rng: Rng;
  /** Scores remembered per video (a uniform reservoir sample of all its windows so far). Default 512. */
  reservoirSize?: number;
}

/**
 * Keeps the informative windows: those that move. Shuffle and Learn (Misra et al., ECCV 2016) samples its
 * tuples from high-motion windows, because order cannot be told in a still shot. A window is kept when its
 * motion is at least `minScore` and ranks in the top `topFraction` of the windows of the same video seen so far,
 * estimated from a fixed-size reservoir sample of their scores (memory bounded for any video length). The
 * reservoir restarts at each new video, since motion levels differ between videos. The first windows of a video
 * are judged against few scores; the very first is always kept if above `minScore`. The `order` task's sampler
 * selects its windows with it (motion from `motionScore`, pixel difference in place of the paper's optical flow).
 *
 * @example
 * windows$.pipe(scoreMotion(), preferMotion({ rng: new Rng(1), topFraction: 0.3 }));
 */
export function preferMotion<F extends Frame>(
  options: PreferMotionOptions,
): OperatorFunction<MotionWindow<F>, MotionWindow<F>> {
  const { minScore = 0, topFraction = 0.5, rng, reservoirSize = 512 } = options;
  if (!(minScore >= 0 && minScore <= 1)) throw new OptionError('minScore', minScore, 'a number in [0, 1]');
  if (!(topFraction > 0 && topFraction <= 1))
    throw new OptionError('topFraction', topFraction, 'a number in (0, 1] (1 keeps every window above minScore)');
  if (!Number.isInteger(reservoirSize) || reservoirSize < 1)
    throw new OptionError('reservoirSize', reservoirSize, 'a positive integer');
  return operate<MotionWindow<F>, MotionWindow<F>>((subscriber) => {
    let reservoir: number[] = [];
    let seen = 0;
    let video: string | undefined;
    const remember = (score: number): void => {
      seen++;
      if (reservoir.length < reservoirSize) reservoir.push(score);
      else {
        const j = rng.int(seen);
        if (j < reservoirSize) reservoir[j] = score;
      }
    };
    const next = (window: MotionWindow<F>): void => {
      const current = window.frames[0]?.source;
      if (current !== video) {
        video = current;
        reservoir = [];
        seen = 0;
      }
      remember(window.motion);
      if (window.motion < minScore) return;
      let above = 0;
      for (const s of reservoir) if (s > window.motion) above++;
      if (above < topFraction * reservoir.length) subscriber.next(window);
    };
    return { next, finalize: () => (reservoir = []) };
  });
}
