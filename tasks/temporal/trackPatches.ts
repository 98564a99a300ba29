import { defer, mergeMap, type Observable, type OperatorFunction } from 'rxjs';
import { detectSceneCuts } from '../../pipeline/detectSceneCuts.ts';
import { OptionError, TaskSamplesError } from '../../core/errors.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { cropResize } from '../../pipeline/multiView.ts';
import type { Rng } from '../../core/rng.ts';
import { windowFrames } from '../../pipeline/windowFrames.ts';
import { tripletSampleWithVideos, tripletTask, type BatchNegativesOptions } from '../contrastive/tripletTask.ts';
import type { PretextTask, SamplerContext } from '../task.ts';
import type { Sample } from '../../pipeline/sample.ts';

/** Options of the patch-tracking sampler. */
export interface TrackPatchesOptions {
  /** Side of a square patch as a fraction of the frame's shorter side, in (0, 1). Default 0.5. */
  patchFraction?: number;
  /**
   * Frames a patch is tracked over (the positive is the patch in the last one), at the pipeline's frame rate.
   * Default 30, as the paper (about a second of 25-30 fps video; with `--fps 12` it spans 2.5 s).
   */
  trackLength?: number;
  /** Block-matching search radius in pixels, per frame. Default 6. */
  searchRadius?: number;
  /** Frames between the starts of consecutive tracks (tracks overlap when below `trackLength`). Default 6. */
  stride?: number;
  /** Tracks whose start patch moves less than this (mean absolute difference in [0, 1]) are dropped. Default 0.02. */
  minMotion?: number;
  /** Patches of earlier tracks (both ends, every video) kept as negative candidates, a uniform reservoir. Default 64. */
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

/** Patches of earlier tracks (both ends): a uniform reservoir over every video, shared by the per-video instances. */
interface PatchBank {
  patches: Frame[];
  /** Patches offered so far (the reservoir's count). */
  seen: number;
}

/**
 * The tracking sampler (Wang and Gupta, ICCV 2015): in each window of `trackLength` frames inside one scene,
 * the most-moving patch of the first two frames is tracked by block matching to the last frame; the first and
 * the last patch are the anchor and positive (the same thing, seen later), and a patch of a track of another
 * video (its first or last) is the negative. Patches are cut and resized to the frame shape (the shared encoder has one
 * input shape), so a patch fills the encoder's input as a zoomed-in view. Samples carry their videos
 * (`tripletSampleWithVideos`) for the task's negatives mined from the batch.
 *
 * The negatives' bank is `context.shared` when a run gives one (`videoSamples`: one instance per video, fed in one
 * seeded order, so each draws from the others' patches reproducibly), else the instance's own (one stream holding
 * several videos, as in tests). Windows before any other video's patch is in the bank give no sample. Memory:
 * `bankSize` patches plus one window per instance.
 *
 * @throws TaskSamplesError when `context.inputs` holds fewer than two videos: there would be no negative.
 * @example
 * frames$.pipe(sampleTrackedPatches({ rng: new Rng(1) }, { trackLength: 30, searchRadius: 6 }));
 */
export function sampleTrackedPatches(
  context: SamplerContext,
  options: TrackPatchesOptions = {},
): OperatorFunction<Frame, Sample> {
  const { patchFraction, trackLength, searchRadius, stride, minMotion, bankSize } = validateTrackOptions(options);
  if (context.inputs && context.inputs.length < 2) {
    throw new TaskSamplesError(
      'tracking',
      context.inputs,
      'needs at least 2 videos (its negatives are patches of other videos)',
      'give --video more files',
    );
  }
  const { rng } = context;
  return (frames: Observable<Frame>) =>
    defer(() => {
      const bank = bankOf(context);
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
          const others = bank.patches.filter((patch) => patch.source !== first.source);
          // Both ends of the track, as the paper's batch negatives are both patches of other pairs: a bank of start
          // patches alone would share with each anchor what every start patch has (the object at the motion's tail).
          remember(bank, anchor, bankSize, rng);
          remember(bank, positive, bankSize, rng);
          if (others.length === 0) return [];
          return [tripletSampleWithVideos({ anchor, positive, negative: others[rng.int(others.length)]! })];
        }),
      );
    });
}

function bankOf(context: SamplerContext): PatchBank {
  const key = 'tracking:patches';
  const found = context.shared?.get(key) as PatchBank | undefined;
  if (found) return found;
  const bank: PatchBank = { patches: [], seen: 0 };
  context.shared?.set(key, bank);
  return bank;
}

/** Reservoir sampling: after `seen` offers, every offered patch is in the bank with the same probability. */
function remember(bank: PatchBank, patch: Frame, size: number, rng: Rng): void {
  bank.seen++;
  if (bank.patches.length < size) bank.patches.push(patch);
  else {
    const j = rng.int(bank.seen);
    if (j < size) bank.patches[j] = patch;
  }
}

function validateTrackOptions(options: TrackPatchesOptions): Required<TrackPatchesOptions> {
  const {
    patchFraction = 0.5,
    trackLength = 30,
    searchRadius = 6,
    stride = 6,
    minMotion = 0.02,
    bankSize = 64,
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

/** Options of a tracking task (see `trackingTask`). */
export interface TrackingTaskOptions {
  /** The sampler's options. */
  sampler?: TrackPatchesOptions;
  /** Negatives from the batch. Default: 4 per pair, random for the first 100 steps, then the hardest. */
  batchNegatives?: BatchNegativesOptions;
  /** Margin of the ranking loss in cosine distance `1 - cos`. Default 0.5, the paper's M. */
  margin?: number;
}

/**
 * Unsupervised learning of visual representations by tracking patches (Wang and Gupta, ICCV 2015).
 *
 * The paper: patches that move (SURF points with IDT motion) are tracked by KCF over 30 frames; the first and last
 * patch of a track should embed closer than the first and a patch of another video. A siamese-triplet AlexNet
 * embeds 227 x 227 patches; the loss is `max(0, D(a, p) - D(a, n) + M)` with `D = 1 - cos` and M = 0.5. Negatives
 * are random at first; after a warm-up, for each pair the K negatives of the mini-batch with the highest loss (the
 * released code takes K = 4 of the batch's patches of other videos).
 *
 * This: the most-moving patch (pixel difference of the first two frames, summed-area table) is tracked by block
 * matching over `trackLength` (30) frames inside one scene; anchor and positive as the paper, plus one random
 * patch of another video per sample. The loss is the paper's (cosine distance, M = 0.5) on K = 4 negatives per
 * pair from the batch's patches of other videos: random for the first 100 steps, then the hardest (nearest the
 * anchor). The logged accuracy ranks each pair against its own random negative (chance 0.5).
 *
 * Differences, and why: block matching stands in for KCF (no tracker library; on short, small frames it follows
 * the moving shape, see its test); pixel difference stands in for IDT motion; patches are resized to the frame
 * shape so that the one shared encoder sees them (the paper's network is trained on patches alone); the warm-up
 * is counted in steps (our runs are minutes, not the paper's epochs over 100K videos).
 *
 * @example
 * const mined = trackingTask({ batchNegatives: { negatives: 4, warmupSteps: 20 } });
 */
export function trackingTask(options: TrackingTaskOptions = {}): PretextTask<Frame> {
  return tripletTask<Frame>({
    name: 'tracking',
    family: 'temporal',
    paper: 'Wang, Gupta. Unsupervised Learning of Visual Representations using Videos. ICCV 2015',
    sampler: (context) => sampleTrackedPatches(context, options.sampler),
    margin: options.margin ?? 0.5,
    distance: 'cosine',
    batchNegatives: options.batchNegatives ?? { negatives: 4, warmupSteps: 100 },
  });
}

/** The tracking task as the registry holds it (see `trackingTask`). */
export const trackPatches = trackingTask();
