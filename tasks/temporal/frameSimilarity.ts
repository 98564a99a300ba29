import { defer, mergeMap, type Observable, type OperatorFunction } from 'rxjs';
import { detectSceneCuts, type DetectSceneCutsOptions } from '../../pipeline/detectSceneCuts.ts';
import { OptionError } from '../../core/errors.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { windowFrames } from '../../pipeline/windowFrames.ts';
import { tripletSample, tripletTask } from '../contrastive/tripletTask.ts';
import type { SamplerContext } from '../task.ts';
import type { Sample } from '../../pipeline/sample.ts';

/** Options of the frame-similarity sampler. */
export interface FrameSimilarityOptions {
  /** Frames between the anchor and its positive (1: adjacent frames). Default 1. */
  positiveGap?: number;
  /** Least distance in frames of a negative from the anchor, in the same video. Default 12. */
  negativeGap?: number;
  /** Frames between the starts of consecutive pairs. Default 2. */
  stride?: number;
  /** Earlier frames of the video remembered as negative candidates (a uniform reservoir). Default 64. */
  bankSize?: number;
  /** Options of the scene-cut detector that keeps positive pairs inside one shot. */
  sceneCuts?: DetectSceneCutsOptions;
}

/**
 * The frame-similarity sampler: anchor and positive are frames `positiveGap` apart inside one scene (a pair
 * never spans a scene cut: `detectSceneCuts` then `windowFrames({ withinScene })`); the negative is a frame of the
 * same video at least `negativeGap` frames from the anchor, drawn from a reservoir of the video's earlier frames
 * (it restarts at each new video). Negatives of the same video share its colours and scene, so only what changes
 * over time tells them apart. Pairs before any such frame has been seen are skipped. Memory: `bankSize` frames
 * plus the pair window.
 *
 * @example
 * frames$.pipe(sampleFrameTriplets({ rng: new Rng(1) }, { positiveGap: 1, negativeGap: 12 }));
 */
export function sampleFrameTriplets(
  context: SamplerContext,
  options: FrameSimilarityOptions = {},
): OperatorFunction<Frame, Sample> {
  const { positiveGap, negativeGap, stride, bankSize, sceneCuts } = validateFrameSimilarityOptions(options);
  const { rng } = context;
  return (frames: Observable<Frame>) =>
    defer(() => {
      let bank: Frame[] = [];
      let seen = 0;
      return frames.pipe(
        detectSceneCuts(sceneCuts),
        windowFrames({ size: 2, step: positiveGap, stride, withinScene: true }),
        mergeMap(([first, second]): Sample[] => {
          if (bank.length > 0 && bank[0]!.source !== first!.source) [bank, seen] = [[], 0];
          const [anchor, positive] = rng.next() < 0.5 ? [first!, second!] : [second!, first!];
          const candidates = bank.filter((f) => Math.abs(f.index - anchor.index) >= negativeGap);
          remember(bank, first!, ++seen, bankSize, context);
          if (candidates.length === 0) return [];
          return [tripletSample({ anchor, positive, negative: candidates[rng.int(candidates.length)]! })];
        }),
      );
    });
}

/** Reservoir sampling: after `seen` offers, every offered frame is in the bank with the same probability. */
function remember(bank: Frame[], frame: Frame, seen: number, size: number, { rng }: SamplerContext): void {
  if (bank.length < size) bank.push(frame);
  else {
    const j = rng.int(seen);
    if (j < size) bank[j] = frame;
  }
}

function validateFrameSimilarityOptions(
  options: FrameSimilarityOptions,
): Required<Omit<FrameSimilarityOptions, 'sceneCuts'>> & Pick<FrameSimilarityOptions, 'sceneCuts'> {
  const { positiveGap = 1, negativeGap = 12, stride = 2, bankSize = 64, sceneCuts } = options;
  for (const [name, value] of [
    ['positiveGap', positiveGap],
    ['negativeGap', negativeGap],
    ['stride', stride],
    ['bankSize', bankSize],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) throw new OptionError(name, value, 'a positive integer');
  }
  if (negativeGap <= positiveGap)
    throw new OptionError(
      'negativeGap',
      negativeGap,
      `more frames than positiveGap (${positiveGap}), so negatives lie farther than positives`,
    );
  return { positiveGap, negativeGap, stride, bankSize, sceneCuts };
}

/**
 * Frame similarity: frames close in time should embed close together, frames of the same video far apart in time
 * farther (temporal coherence as a metric-learning signal). Shares the triplet base: predictions `[batch, 3, dim]`,
 * metric the fraction of triplets ranked right (chance 0.5).
 *
 * The paper (Mobahi, Collobert and Weston, ICML 2009): consecutive frames of a video are pulled together and
 * non-consecutive ones pushed apart by a margin (a contrastive pair loss alongside a supervised one). This:
 * adjacent frames within one scene against a frame of the same video at least 12 frames away, with the triplet
 * ranking loss of the base (squared distance of unit embeddings, margin 0.2). Differences, and why: a triplet loss
 * in place of the pair loss, to share the metric-learning base with TCN and tracking; no supervised term (this is
 * pretraining); negatives are kept to the same video so that colours or scene, which differ between videos, cannot
 * tell them apart.
 */
export const frameSimilarity = tripletTask<Frame>({
  name: 'frame-sim',
  family: 'temporal',
  paper: 'Mobahi, Collobert, Weston. Deep Learning from Temporal Coherence in Video. ICML 2009',
  sampler: (context) => sampleFrameTriplets(context),
});
