import { defer, mergeMap, type Observable, type OperatorFunction } from 'rxjs';
import { detectSceneCuts } from '../../pipeline/detectSceneCuts.ts';
import { OptionError } from '../../core/errors.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { cropResize } from '../../pipeline/multiView.ts';
import type { Rng } from '../../core/rng.ts';
import { windowFrames } from '../../pipeline/windowFrames.ts';
import { tripletSample, tripletTask } from '../contrastive/tripletTask.ts';
import type { SamplerContext } from '../task.ts';
import type { Sample } from '../../pipeline/sample.ts';

/** Options of the patch-tracking sampler. */
export interface TrackPatchesOptions {
  /** Side of a square patch as a fraction of the frame's shorter side, in (0, 1). Default 0.5. */
  patchFraction?: number;
  /** Frames a patch is tracked over (the positive is the patch in the last one). Default 4. */
  trackLength?: number;
  /** Block-matching search radius in pixels, per frame. Default 6. */
  searchRadius?: number;
  /** Frames between the starts of consecutive tracks. Default 4. */
  stride?: number;
  /** Tracks whose start patch moves less than this (mean absolute difference in [0, 1]) are dropped. Default 0.02. */
  minMotion?: number;
  /** Patches of earlier tracks kept as negative candidates. Default 32. */
  bankSize?: number;
}

/** A patch's top-left corner, in pixels. */
export interface PatchPosition {
  x: number;
  y: number;
}

/**
 * The most-moving square patch between two frames: the `side` x `side` window with the largest summed absolute
 * difference of `a` and `b` (summed-area table, every position), ties broken at random among the best three.
 * Returns its corner and its mean motion in [0, 1].
 */
export function pickMovingPatch(a: Frame, b: Frame, side: number, rng: Rng): PatchPosition & { motion: number } {
  const { width, height, channels } = a;
  // Summed-area table of the per-pixel motion: [(height + 1) * (width + 1)].
  const table = new Float64Array((width + 1) * (height + 1));
  for (let y = 0; y < height; y++) {
    let row = 0;
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * channels;
      for (let c = 0; c < channels; c++) row += Math.abs(a.data[p + c]! - b.data[p + c]!);
      table[(y + 1) * (width + 1) + x + 1] = table[y * (width + 1) + x + 1]! + row;
    }
  }
  const best: { x: number; y: number; sum: number }[] = [];
  for (let y = 0; y + side <= height; y++) {
    for (let x = 0; x + side <= width; x++) {
      const sum =
        table[(y + side) * (width + 1) + x + side]! -
        table[y * (width + 1) + x + side]! -
        table[(y + side) * (width + 1) + x]! +
        table[y * (width + 1) + x]!;
      if (best.length < 3 || sum > best[2]!.sum) {
        best.push({ x, y, sum });
        best.sort((p, q) => q.sum - p.sum);
        if (best.length > 3) best.pop();
      }
    }
  }
  const pick = best[rng.int(best.length)]!;
  return { x: pick.x, y: pick.y, motion: pick.sum / (side * side * channels * 255) };
}

/**
 * Sum of squared differences between the patch of `a` at `pa` and the patch of `b` at `pb`. Stops early once the
 * sum passes `bound` (a search only needs to know the candidate lost), returning the partial sum.
 */
export function patchSsd(
  a: Frame,
  pa: PatchPosition,
  b: Frame,
  pb: PatchPosition,
  side: number,
  bound = Infinity,
): number {
  const { width, channels } = a;
  let sum = 0;
  for (let y = 0; y < side; y++) {
    const ra = ((pa.y + y) * width + pa.x) * channels;
    const rb = ((pb.y + y) * width + pb.x) * channels;
    for (let i = 0; i < side * channels; i++) {
      const d = a.data[ra + i]! - b.data[rb + i]!;
      sum += d * d;
    }
    if (sum > bound) return sum;
  }
  return sum;
}

/**
 * Tracks a patch through `frames` by block matching: in each next frame, the position within `radius` pixels of
 * the last one whose patch has the least SSD to the patch in the previous frame. Returns one corner per frame.
 */
export function trackPatch(
  frames: readonly Frame[],
  start: PatchPosition,
  side: number,
  radius: number,
): PatchPosition[] {
  const track = [start];
  for (let t = 1; t < frames.length; t++) {
    const previous = track[t - 1]!;
    const { width, height } = frames[t]!;
    let best = previous;
    let bestCost = Infinity;
    for (let y = Math.max(0, previous.y - radius); y <= Math.min(height - side, previous.y + radius); y++) {
      for (let x = Math.max(0, previous.x - radius); x <= Math.min(width - side, previous.x + radius); x++) {
        const cost = patchSsd(frames[t - 1]!, previous, frames[t]!, { x, y }, side, bestCost);
        if (cost < bestCost) [best, bestCost] = [{ x, y }, cost];
      }
    }
    track.push(best);
  }
  return track;
}

/**
 * The tracking sampler (Wang and Gupta, ICCV 2015): in each window of `trackLength` frames inside one scene,
 * the most-moving patch of the first two frames is tracked by block matching to the last frame; the first and
 * the last patch are the anchor and positive (the same thing, seen later), and a patch of an earlier track of
 * another video is the negative. Patches are cut and resized to the frame shape (the shared encoder has one
 * input shape), so a patch fills the encoder's input as a zoomed-in view. Memory: `bankSize` patches plus one
 * window. Windows before any other video's track has been seen give no sample.
 *
 * @example
 * frames$.pipe(sampleTrackedPatches({ rng: new Rng(1) }, { trackLength: 4, searchRadius: 6 }));
 */
export function sampleTrackedPatches(
  context: SamplerContext,
  options: TrackPatchesOptions = {},
): OperatorFunction<Frame, Sample> {
  const { patchFraction, trackLength, searchRadius, stride, minMotion, bankSize } = validateTrackOptions(options);
  const { rng } = context;
  return (frames: Observable<Frame>) =>
    defer(() => {
      const bank: Frame[] = [];
      return frames.pipe(
        detectSceneCuts(),
        windowFrames({ size: trackLength, stride, withinScene: true }),
        mergeMap((window): Sample[] => {
          const first = window[0]!;
          const side = Math.max(2, Math.round(patchFraction * Math.min(first.width, first.height)));
          const start = pickMovingPatch(first, window[1]!, side, rng);
          if (start.motion < minMotion) return [];
          const track = trackPatch(window, start, side, searchRadius);
          const cut = (f: Frame, p: PatchPosition): Frame => ({ ...f, data: cropResize(f, [p.x, p.y, side, side]) });
          const anchor = cut(first, start);
          const positive = cut(window[window.length - 1]!, track[track.length - 1]!);
          const others = bank.filter((patch) => patch.source !== first.source);
          bank.push(anchor);
          if (bank.length > bankSize) bank.splice(rng.int(bank.length), 1);
          if (others.length === 0) return [];
          return [tripletSample({ anchor, positive, negative: others[rng.int(others.length)]! })];
        }),
      );
    });
}

function validateTrackOptions(options: TrackPatchesOptions): Required<TrackPatchesOptions> {
  const {
    patchFraction = 0.5,
    trackLength = 4,
    searchRadius = 6,
    stride = 4,
    minMotion = 0.02,
    bankSize = 32,
  } = options;
  if (!(patchFraction > 0 && patchFraction < 1))
    throw new OptionError('patchFraction', patchFraction, 'a fraction in (0, 1) of the frame side');
  if (!Number.isInteger(trackLength) || trackLength < 2)
    throw new OptionError('trackLength', trackLength, 'an integer >= 2 (frames a patch is followed over)');
  for (const [name, value] of [
    ['searchRadius', searchRadius],
    ['stride', stride],
    ['bankSize', bankSize],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) throw new OptionError(name, value, 'a positive integer');
  }
  if (!(minMotion >= 0 && minMotion < 1)) throw new OptionError('minMotion', minMotion, 'a number in [0, 1)');
  return { patchFraction, trackLength, searchRadius, stride, minMotion, bankSize };
}

/**
 * Unsupervised learning of visual representations by tracking patches (Wang and Gupta, ICCV 2015): a moving
 * patch and the same patch tracked a few frames later embed close together, patches of other videos far away;
 * triplet ranking loss. Patches are resized to the frame shape to share the encoder with the other tasks.
 */
export const trackPatches = tripletTask<Frame>({
  name: 'tracking',
  family: 'temporal',
  paper: 'Wang, Gupta. Unsupervised Learning of Visual Representations using Videos. ICCV 2015',
  sampler: (context) => sampleTrackedPatches(context),
  margin: 0.5,
});
