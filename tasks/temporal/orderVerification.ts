import { mlpHead } from '../../models/heads.ts';
import * as tf from '@tensorflow/tfjs';
import { defer, mergeMap, type OperatorFunction, type Observable } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import { frameToFloat, type Frame } from '../../pipeline/frame.ts';
import type { Rng } from '../../core/rng.ts';
import { type PretextTask, type SamplerContext, featureSizeOf } from '../task.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { binaryAccuracy, binaryCrossEntropy } from '../losses/binaryCrossEntropy.ts';

/** Options of the order-verification sampler. */
export interface OrderSamplerOptions {
  /** Frames between consecutive picks a, b, c, d, e of a window (the window spans 4 * gap frames). Default 2. */
  gap?: number;
  /** Frames between the starts of consecutive windows. Default 2. */
  stride?: number;
  /**
   * Windows whose motion (mean absolute difference between frames b and d, in [0, 1]) is below this are dropped,
   * as Shuffle and Learn prefers high-motion windows: a still window has no order to verify. Default 0.01.
   */
  minMotion?: number;
  /** Fraction of negative (shuffled) tuples. Default 0.5. */
  negativeFraction?: number;
}

/** Mean absolute difference of two frames' pixels, in [0, 1]. */
export function frameDifference(a: Frame, b: Frame): number {
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += Math.abs(a.data[i]! - b.data[i]!);
  return sum / (a.data.length * 255);
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
 * The sampler: keeps the last `4 * gap + 1` frames of the current video (memory bounded by the window),
 * and every `stride` frames emits one tuple from the window if it moves enough. A change of `frame.source`
 * starts a new window, so no tuple mixes two videos.
 */
export function sampleFrameOrder(
  context: SamplerContext,
  options: OrderSamplerOptions = {},
): OperatorFunction<Frame, Sample> {
  const { gap, stride, minMotion, negativeFraction } = validateOrderOptions(options);
  const span = 4 * gap + 1;
  return (frames: Observable<Frame>) =>
    defer(() => {
      let recent: Frame[] = [];
      let sinceLast = 0;
      return frames.pipe(
        mergeMap((frame): Sample[] => {
          if (recent.length > 0 && recent[0]!.source !== frame.source) {
            recent = [];
            sinceLast = 0;
          }
          recent.push(frame);
          if (recent.length > span) recent.shift();
          if (recent.length < span || sinceLast++ % stride !== 0) return [];
          const window = [0, 1, 2, 3, 4].map((k) => recent[k * gap]!);
          if (frameDifference(window[1]!, window[3]!) < minMotion) return [];
          const tuple = orderTuple(window, context.rng, negativeFraction);
          return [
            { inputs: tuple.frames.map(frameToFloat), label: Float32Array.of(tuple.label), source: frame.source },
          ];
        }),
      );
    });
}

function validateOrderOptions(options: OrderSamplerOptions): Required<OrderSamplerOptions> {
  const { gap = 2, stride = 2, minMotion = 0.01, negativeFraction = 0.5 } = options;
  if (!Number.isInteger(gap) || gap < 1) throw new OptionError('gap', gap, 'a positive integer (frames between picks)');
  if (!Number.isInteger(stride) || stride < 1) throw new OptionError('stride', stride, 'a positive integer');
  if (!(minMotion >= 0 && minMotion < 1)) throw new OptionError('minMotion', minMotion, 'a number in [0, 1)');
  if (!(negativeFraction > 0 && negativeFraction < 1))
    throw new OptionError('negativeFraction', negativeFraction, 'a number in (0, 1)');
  return { gap, stride, minMotion, negativeFraction };
}

/**
 * Frame order verification (Shuffle and Learn, Misra, Zitnick and Hebert, ECCV 2016): is this tuple of three
 * frames in temporal order (forwards or backwards)? The shared encoder embeds each frame (siamese); the head
 * reads the concatenated features `[batch, 3 * featureSize]` and outputs one logit `[batch, 1]`.
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
