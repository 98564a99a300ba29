import * as tf from '@tensorflow/tfjs';
import { filter, map, pipe, type OperatorFunction } from 'rxjs';
import { detectSceneCuts } from '../../pipeline/detectSceneCuts.ts';
import { OptionError } from '../../core/errors.ts';
import { frameToFloat, type Frame } from '../../pipeline/frame.ts';
import { scoreMotion } from '../../pipeline/motionScore.ts';
import type { Rng } from '../../core/rng.ts';
import { windowFrames } from '../../pipeline/windowFrames.ts';
import { type PretextTask, type SamplerContext, featureSizeOf } from '../task.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { categoricalAccuracy, softmaxCrossEntropy } from '../losses/softmaxCrossEntropy.ts';

/** Options of the clip-order sampler. */
export interface ClipOrderOptions {
  /** Frames (clips of one frame) whose order is shuffled, 2..4: `length!` classes. Default 3 (6 classes). */
  length?: number;
  /** Frames between two picked frames. Default 2. */
  gap?: number;
  /** Frames between the starts of consecutive tuples. Default 2. */
  stride?: number;
  /** Tuples moving less than this (`motionScore`, in [0, 1]) are dropped: a still tuple has no order. Default 0.01. */
  minMotion?: number;
}

/** Every permutation of `0..n-1` in lexicographic order: the class `k` of VCOP is `permutations(n)[k]`. */
export function permutations(n: number): number[][] {
  if (n <= 1) return [[0]];
  return permutations(n - 1)
    .flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]))
    .sort((a, b) => {
      for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
      return 0;
    });
}

/** Shuffles an ordered tuple by a random permutation; the label is the permutation's class as a one-hot `[n!]`. */
export function shuffleTuple(frames: readonly Frame[], rng: Rng): { frames: Frame[]; label: Float32Array } {
  const all = permutations(frames.length);
  const k = rng.int(all.length);
  const label = new Float32Array(all.length);
  label[k] = 1;
  return { frames: all[k]!.map((i) => frames[i]!), label };
}

/**
 * The clip-order sampler: tuples of `length` frames `gap` apart inside one scene (`detectSceneCuts` then
 * `windowFrames({ withinScene })`), dropped when they barely move, presented in a random order.
 *
 * @example
 * frames$.pipe(sampleClipOrder({ rng: new Rng(1) }, { length: 3 }));
 */
export function sampleClipOrder(
  context: SamplerContext,
  options: ClipOrderOptions = {},
): OperatorFunction<Frame, Sample> {
  const { length, gap, stride, minMotion } = validateClipOrderOptions(options);
  return pipe(
    detectSceneCuts<Frame>(),
    windowFrames({ size: length, step: gap, stride, withinScene: true }),
    scoreMotion(),
    filter((w) => w.motion >= minMotion),
    map(({ frames }) => {
      const tuple = shuffleTuple(frames, context.rng);
      return { inputs: tuple.frames.map(frameToFloat), label: tuple.label, source: frames[0]!.source };
    }),
  );
}

function validateClipOrderOptions(options: ClipOrderOptions): Required<ClipOrderOptions> {
  const { length = 3, gap = 2, stride = 2, minMotion = 0.01 } = options;
  if (!Number.isInteger(length) || length < 2 || length > 4)
    throw new OptionError('length', length, 'an integer from 2 to 4 (4! = 24 classes is the most VCOP uses)');
  for (const [name, value] of [
    ['gap', gap],
    ['stride', stride],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) throw new OptionError(name, value, 'a positive integer');
  }
  if (!(minMotion >= 0 && minMotion < 1)) throw new OptionError('minMotion', minMotion, 'a number in [0, 1)');
  return { length, gap, stride, minMotion };
}

/**
 * VCOP's head: every pair of clip features is concatenated and passed through one shared dense layer (pairwise
 * relations), the pair outputs are concatenated and classified into the `length!` orders.
 * Inputs: `length` tensors `[batch, featureSize]`; output logits `[batch, length!]`.
 */
export function buildClipOrderHead(featureSize: number, rng: Rng, length = 3, units = 64): tf.LayersModel {
  const seed = rng.int(2 ** 31);
  const inputs = Array.from({ length }, (_, i) => tf.input({ shape: [featureSize], name: `clip${i}` }));
  const relation = tf.layers.dense({
    units,
    activation: 'relu',
    kernelInitializer: tf.initializers.heNormal({ seed }),
    name: 'pair_relation',
  });
  const pairs: tf.SymbolicTensor[] = [];
  for (let i = 0; i < length; i++) {
    for (let j = i + 1; j < length; j++) {
      pairs.push(
        relation.apply(
          tf.layers.concatenate({ name: `pair${i}${j}` }).apply([inputs[i]!, inputs[j]!]) as tf.SymbolicTensor,
        ) as tf.SymbolicTensor,
      );
    }
  }
  const joined =
    pairs.length === 1 ? pairs[0]! : (tf.layers.concatenate({ name: 'pairs' }).apply(pairs) as tf.SymbolicTensor);
  const logits = tf.layers
    .dense({
      units: permutations(length).length,
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
      name: 'order_logits',
    })
    .apply(joined) as tf.SymbolicTensor;
  return tf.model({ inputs, outputs: logits, name: 'vcop_head' });
}

/**
 * Clip order prediction (VCOP, Xu et al., CVPR 2019): which of the `n!` permutations was applied to `n` frames
 * in temporal order (here each clip is one frame, embedded by the shared frame encoder)? A softmax over `n!`
 * classes (chance `1 / n!`). With motion that looks the same played backwards, a permutation and its reversal
 * cannot be told apart, so the attainable accuracy is 1/2 for n = 3 on such clips.
 *
 * Unlike order verification (Shuffle and Learn: ordered or not, 2 classes), the full permutation must be named.
 */
export const clipOrder = {
  name: 'vcop',
  family: 'temporal',
  paper:
    'Xu, Xiao, Zhao, Shao, Xie, Zhuang. Self-supervised Spatiotemporal Learning via Video Clip Order Prediction. CVPR 2019',
  reads: 'frames',
  configure() {
    return this;
  },
  sampler: (context) => sampleClipOrder(context),
  inputShapes: (frameShape) => [[...frameShape], [...frameShape], [...frameShape]],
  labelShape: () => [6],
  build: (encoder, rng) => ({ head: buildClipOrderHead(featureSizeOf(encoder), rng, 3) }),
  forward(encoder, { head }, inputs, training) {
    return tf.tidy(() => {
      // One encoder call on [n * batch, ...] then split back into the n clips.
      const features = tf.split(encoder.apply(tf.concat(inputs, 0), { training }) as tf.Tensor, inputs.length, 0);
      return head.apply(features, { training }) as tf.Tensor;
    });
  },
  loss: softmaxCrossEntropy,
  metric: categoricalAccuracy,
} satisfies PretextTask<Frame>;
