import { mlpHead } from '../../models/heads.ts';
import * as tf from '@tensorflow/tfjs';
import { map, pipe, type OperatorFunction } from 'rxjs';
import { detectSceneCuts } from '../../pipeline/detectSceneCuts.ts';
import { motionScore, scoreMotion } from '../../pipeline/motionScore.ts';
import { preferMotion } from '../../pipeline/preferMotion.ts';
import { windowFrames } from '../../pipeline/windowFrames.ts';
import { OptionError } from '../../core/errors.ts';
import { frameToFloat, type Frame } from '../../pipeline/frame.ts';
import type { Rng } from '../../core/rng.ts';
import { type PretextTask, type SamplerContext, featureSizeOf } from '../task.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { binaryAccuracy, binaryCrossEntropy } from '../losses/binaryCrossEntropy.ts';

/** Options of the order-verification sampler. */
export interface OrderSamplerOptions {
  /** Frames between consecutive picks a, b, c, d, e of a window (the window spans 4 * gap + 1 frames). Default 2. */
  gap?: number;
  /** Frames between the starts of consecutive candidate windows. Default 1 (with `topFraction` 0.5, about one tuple per two frames of a video). */
  stride?: number;
  /**
   * Keep a window when its motion ranks in this top fraction of the windows of its video so far (`preferMotion`):
   * Shuffle and Learn samples its tuples from high-motion windows, since order cannot be told in a still one.
   * Default 0.5.
   */
  topFraction?: number;
  /** Windows whose motion (`motionScore` of a..e, in [0, 1]) is below this are dropped whatever their rank. Default 0.01. */
  minMotion?: number;
  /** Fraction of negative (shuffled) tuples. Default 0.5. */
  negativeFraction?: number;
}

/** Mean absolute difference of two frames' pixels, in [0, 1]. */
export function frameDifference(a: Frame, b: Frame): number {
  return motionScore([a, b]);
}

/**
 * Turns one window of five frames a..e into a labelled tuple, as in Shuffle and Learn (Misra et al., ECCV 2016):
 * positive (label 1) is (b, c, d) or its reverse (d, c, b); negative (label 0) puts a frame from outside the
 * middle, a or e, in the middle: (b, a, d), (b, e, d) or their reverses.
 */
export function orderTuple(
  window: readonly Frame[],
  rng: Rng,
  negativeFraction: number,
): { frames: Frame[]; label: number } {
  const [a, b, c, d, e] = window as [Frame, Frame, Frame, Frame, Frame];
  const negative = rng.next() < negativeFraction;
  const middle = negative ? (rng.next() < 0.5 ? a : e) : c;
  const forward = rng.next() < 0.5;
  return { frames: forward ? [b, middle, d] : [d, middle, b], label: negative ? 0 : 1 };
}

/**
 * The sampler: windows of five frames a..e, `gap` frames apart, inside one scene of one video (`detectSceneCuts`,
 * then `windowFrames`: a cut would look like motion), one starting every `stride` frames; each window's motion is
 * scored (`scoreMotion`, mean absolute difference of consecutive picks, in place of the paper's optical flow) and
 * `preferMotion` keeps those in the top `topFraction` of their video so far; each kept window gives one tuple
 * (`orderTuple`). Memory: one window and `preferMotion`'s reservoir of scores.
 *
 * @example
 * frames$.pipe(sampleFrameOrder({ rng: new Rng(1) }, { gap: 2, topFraction: 0.5 }));
 */
export function sampleFrameOrder(
  context: SamplerContext,
  options: OrderSamplerOptions = {},
): OperatorFunction<Frame, Sample> {
  const { gap, stride, topFraction, minMotion, negativeFraction } = validateOrderOptions(options);
  const { rng } = context;
  return pipe(
    detectSceneCuts(),
    windowFrames({ size: 5, step: gap, stride, withinScene: true }),
    scoreMotion(),
    preferMotion({ rng, topFraction, minScore: minMotion }),
    map(({ frames: window }): Sample => {
      const tuple = orderTuple(window, rng, negativeFraction);
      return { inputs: tuple.frames.map(frameToFloat), label: Float32Array.of(tuple.label), source: window[0]!.source };
    }),
  );
}

function validateOrderOptions(options: OrderSamplerOptions): Required<OrderSamplerOptions> {
  const { gap = 2, stride = 1, topFraction = 0.5, minMotion = 0.01, negativeFraction = 0.5 } = options;
  if (!Number.isInteger(gap) || gap < 1) throw new OptionError('gap', gap, 'a positive integer (frames between picks)');
  if (!Number.isInteger(stride) || stride < 1) throw new OptionError('stride', stride, 'a positive integer');
  if (!(topFraction > 0 && topFraction <= 1))
    throw new OptionError('topFraction', topFraction, 'a number in (0, 1] (1 keeps every window above minMotion)');
  if (!(minMotion >= 0 && minMotion < 1)) throw new OptionError('minMotion', minMotion, 'a number in [0, 1)');
  if (!(negativeFraction > 0 && negativeFraction < 1))
    throw new OptionError('negativeFraction', negativeFraction, 'a number in (0, 1)');
  return { gap, stride, topFraction, minMotion, negativeFraction };
}

/**
 * Frame order verification (Shuffle and Learn, Misra, Zitnick and Hebert, ECCV 2016): is this tuple of three
 * frames in temporal order (forwards or backwards)? The shared encoder embeds each frame (siamese); the head
 * reads the concatenated features `[batch, 3 * featureSize]` and outputs one logit `[batch, 1]`.
 *
 * The paper: five frames a < b < c < d < e are sampled from windows of high motion (frames weighted by their
 * coarse optical-flow magnitude); (b, c, d) and (d, c, b) are positives, (b, a, d) and (b, e, d) (and reversed)
 * negatives; an AlexNet triplet siamese network with a concatenating classifier, cross-entropy.
 *
 * This: windows of five frames `gap` apart (default 2) inside one scene; motion is the mean absolute pixel
 * difference of consecutive picks (`motionScore`), and `preferMotion` keeps a window when it ranks in the top half
 * of its video's windows so far (and moves at all); tuples as the paper, negatives half of them. Differences, and
 * why: pixel difference stands in for optical flow (no flow library; both are large where things move, though a
 * global brightness change counts as motion here); picks are evenly spaced in the window rather than drawn at
 * random within it; windows are ranked within their video as it streams (a whole video's ranking would need it
 * decoded first).
 *
 * @example
 * const samples$ = decodeFrames('clip.mp4', { width: 64, height: 64 }).pipe(orderVerification.sampler({ rng: new Rng(1) }));
 */
export const orderVerification = {
  name: 'order',
  family: 'temporal',
  paper:
    'Misra, Zitnick, Hebert. Shuffle and Learn: Unsupervised Learning using Temporal Order Verification. ECCV 2016',
  reads: 'frames',
  configure() {
    return this;
  },
  sampler: (context) => sampleFrameOrder(context),
  inputShapes: (frameShape) => [[...frameShape], [...frameShape], [...frameShape]],
  labelShape: () => [1],
  build(encoder, rng) {
    const featureSize = featureSizeOf(encoder);
    const head = mlpHead('order_head', 3 * featureSize, [{ units: 64, activation: 'relu' }, { units: 1 }], rng);
    return { head };
  },
  forward(encoder, { head }, inputs, training) {
    return tf.tidy(() => {
      const features = inputs.map((frames) => encoder.apply(frames, { training }) as tf.Tensor);
      return head.apply(tf.concat(features, 1), { training }) as tf.Tensor;
    });
  },
  loss: binaryCrossEntropy,
  metric: binaryAccuracy,
} satisfies PretextTask<Frame>;
