import * as tf from '@tensorflow/tfjs';
import { filter, map, pipe, type OperatorFunction } from 'rxjs';
import { detectSceneCuts } from '../../pipeline/detectSceneCuts.ts';
import { OptionError } from '../../core/errors.ts';
import { frameToFloat, type Frame } from '../../pipeline/frame.ts';
import { motionScore } from '../../pipeline/motionScore.ts';
import type { Rng } from '../../core/rng.ts';
import { windowClips } from '../../pipeline/windowClips.ts';
import { type PretextTask, type SamplerContext, featureSizeOf } from '../task.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { categoricalAccuracy, softmaxCrossEntropy } from '../losses/softmaxCrossEntropy.ts';

/** Options of the clip-order sampler and task. */
export interface ClipOrderOptions {
  /** Clips in a tuple (n), 2..4: `n!` order classes. Default 3 (6 classes), the paper's main setting. */
  clips?: number;
  /** Frames in a clip. Default 4 (the paper: 16 at 25-30 fps; see `clipOrder` for why fewer). */
  clipLength?: number;
  /** Frames left out between consecutive clips. Default 2 (the paper: 8, half a clip). */
  interval?: number;
  /** Input frames between two frames taken, so that a tuple covers more time at a high frame rate. Default 1. */
  step?: number;
  /** Input frames between the starts of consecutive tuples. Default 4. */
  stride?: number;
  /** Tuples moving less than this (`motionScore`, in [0, 1]) are dropped: a still tuple has no order. Default 0.01. */
  minMotion?: number;
  /** Units of the head's pairwise relation layer (the paper's fc7: 512 on 512-d clip features). Default 64. */
  relationUnits?: number;
}

type ResolvedClipOrderOptions = Required<ClipOrderOptions>;

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

/**
 * Shuffles an ordered tuple (of clips, or of anything) by a random permutation: slot `i` of the result holds item
 * `permutations(n)[k][i]`; the label is the class `k` as a one-hot `[n!]`.
 */
export function shuffleTuple<T>(items: readonly T[], rng: Rng): { items: T[]; label: Float32Array } {
  const all = permutations(items.length);
  const k = rng.int(all.length);
  const label = new Float32Array(all.length);
  label[k] = 1;
  return { items: all[k]!.map((i) => items[i]!), label };
}

/** A clip's frames as one float array `[clipLength, H, W, C]` in [0, 1]. */
function clipToFloat(clip: readonly Frame[]): Float32Array {
  const size = clip[0]!.data.length;
  const out = new Float32Array(clip.length * size);
  clip.forEach((frame, t) => out.set(frameToFloat(frame), t * size));
  return out;
}

/**
 * The clip-order sampler: tuples of `clips` clips of `clipLength` frames, `interval` frames apart, inside one scene
 * (`detectSceneCuts` then `windowClips({ withinScene })`), dropped when they barely move, presented in a random
 * order. Inputs: one `[clipLength, H, W, C]` array per clip slot; label: the permutation's one-hot `[clips!]`.
 *
 * @example
 * frames$.pipe(sampleClipOrder({ rng: new Rng(1) }, { clips: 3, clipLength: 4, interval: 2 }));
 */
export function sampleClipOrder(
  context: SamplerContext,
  options: ClipOrderOptions = {},
): OperatorFunction<Frame, Sample> {
  const { clips, clipLength, interval, step, stride, minMotion } = validateClipOrderOptions(options);
  return pipe(
    detectSceneCuts<Frame>(),
    windowClips({ clips, clipLength, interval, step, stride, withinScene: true }),
    filter((tuple) => motionScore(tuple.flat()) >= minMotion),
    map((tuple) => {
      const shuffled = shuffleTuple(tuple, context.rng);
      return { inputs: shuffled.items.map(clipToFloat), label: shuffled.label, source: tuple[0]![0]!.source };
    }),
  );
}

function validateClipOrderOptions(options: ClipOrderOptions): ResolvedClipOrderOptions {
  const {
    clips = 3,
    clipLength = 4,
    interval = 2,
    step = 1,
    stride = 4,
    minMotion = 0.01,
    relationUnits = 64,
  } = options;
  if (!Number.isInteger(clips) || clips < 2 || clips > 4)
    throw new OptionError('clips', clips, 'an integer from 2 to 4 (4! = 24 classes is the most VCOP uses)');
  for (const [name, value] of [
    ['clipLength', clipLength],
    ['step', step],
    ['stride', stride],
    ['relationUnits', relationUnits],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) throw new OptionError(name, value, 'a positive integer');
  }
  if (!Number.isInteger(interval) || interval < 0) throw new OptionError('interval', interval, 'an integer >= 0');
  if (!(minMotion >= 0 && minMotion < 1)) throw new OptionError('minMotion', minMotion, 'a number in [0, 1)');
  return { clips, clipLength, interval, step, stride, minMotion, relationUnits };
}

/**
 * VCOP's head, as the paper's VCOPN: every pair of clip features `(i, j)`, `i < j`, is concatenated and passed
 * through one shared dense layer with ReLU (pairwise relations, fc7), the `n(n-1)/2` pair outputs are concatenated
 * and one dense layer (fc8) gives the logits of the `n!` orders. The paper's dropout (0.5) before fc8 is left out:
 * tfjs's dropout is either unseeded, which would break exact resumes, or draws the same mask every step.
 * Inputs: `clips` tensors `[batch, featureSize]`; output logits `[batch, clips!]`.
 */
export function buildClipOrderHead(featureSize: number, rng: Rng, clips = 3, units = 64): tf.LayersModel {
  const seed = rng.int(2 ** 31);
  const inputs = Array.from({ length: clips }, (_, i) => tf.input({ shape: [featureSize], name: `clip${i}` }));
  const relation = tf.layers.dense({
    units,
    activation: 'relu',
    kernelInitializer: tf.initializers.heNormal({ seed }),
    name: 'pair_relation',
  });
  const pairs: tf.SymbolicTensor[] = [];
  for (let i = 0; i < clips; i++) {
    for (let j = i + 1; j < clips; j++) {
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
      units: permutations(clips).length,
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
      name: 'order_logits',
    })
    .apply(joined) as tf.SymbolicTensor;
  return tf.model({ inputs, outputs: logits, name: 'vcop_head' });
}

/**
 * Clip features: every frame of every clip through the shared 2-D frame encoder, then the mean over each clip's
 * frames. Inputs `clips` tensors `[batch, clipLength, H, W, C]`; returns `clips` tensors `[batch, featureSize]`.
 *
 * One encoder call holds every frame of every slot, so batch normalization computes its statistics over all of
 * them: a statistic that is symmetric in the slots cannot tell which clip sits where, and every clip is an input of
 * the prediction anyway, so unlike CPC's future frames the statistics reveal nothing the head does not see.
 */
export function encodeClips(encoder: tf.LayersModel, inputs: tf.Tensor[], training: boolean): tf.Tensor2D[] {
  return tf.tidy(() => {
    const [batch, clipLength, ...frame] = inputs[0]!.shape as number[];
    const frames = tf.reshape(tf.concat(inputs, 0), [inputs.length * batch! * clipLength!, ...frame]);
    const z = encoder.apply(frames, { training }) as tf.Tensor2D; // [n * batch * L, F]
    const pooled = tf.mean(tf.reshape(z, [inputs.length * batch!, clipLength!, z.shape[1]]), 1); // [n * batch, F]
    return tf.split(pooled, inputs.length, 0) as tf.Tensor2D[];
  });
}

/**
 * Video clip order prediction (VCOP; Xu, Xiao, Zhao, Shao, Xie, Zhuang, CVPR 2019).
 *
 * The paper: a tuple of n = 3 clips (4 also tried) of 16 consecutive frames, 8 frames apart, is shuffled; a 3-D
 * CNN (C3D, R3D or R(2+1)D, shared weights) embeds each clip into one vector (global average pooling over time and
 * space); the head concatenates the features of every pair of clips, passes each pair through one shared fc layer
 * (512 units, ReLU), concatenates the pair outputs and classifies them into the n! orders (softmax cross-entropy).
 *
 * This task: the same tuples, shuffles, labels and pairwise head, with two differences. (1) Each clip is embedded by
 * the shared 2-D frame encoder frame by frame and the frame features are averaged over the clip (`encodeClips`): the
 * encoder is shared with every other video task, which read single frames, and a 3-D CNN could not be. Averaging
 * discards the order of frames inside a clip, so order must be read from how the clips differ (where things are),
 * not from motion inside a clip. (2) Clips are 4 frames with 2 between them (default), not 16 and 8: the encoder
 * runs on every frame of the tuple, and a step's cost grows about linearly with the frames (wasm, 60 steps of 16
 * tuples at 24x24: 6.0 s at 1 frame a clip, 9.2 s at 2, 15.2 s at 4), so 16-frame clips would be ~4x slower again;
 * at 12-30 fps a tuple of 16 frames still covers 0.5-1.3 s, and `step` stretches it. The head has no dropout (see
 * `buildClipOrderHead`) and 64 relation units for 64-d features.
 *
 * Chance is `1 / n!`. Motion that looks the same played backwards (a shape sliding across, as in the synthetic
 * fixtures) does not tell a permutation from its reversal, so the attainable accuracy on such clips is 1/2 for n = 3.
 *
 * @example
 * const vcop4 = createClipOrderTask({ clips: 4 }); // 24 classes
 */
export function createClipOrderTask(options: ClipOrderOptions = {}): PretextTask<Frame> {
  const resolved = validateClipOrderOptions(options);
  const { clips, clipLength, relationUnits } = resolved;
  const classes = permutations(clips).length;
  return {
    name: 'vcop',
    family: 'temporal',
    paper:
      'Xu, Xiao, Zhao, Shao, Xie, Zhuang. Self-supervised Spatiotemporal Learning via Video Clip Order Prediction. CVPR 2019',
    reads: 'frames',
    configure() {
      return this;
    },
    sampler: (context) => sampleClipOrder(context, resolved),
    inputShapes: (frameShape) => Array.from({ length: clips }, () => [clipLength, ...frameShape]),
    labelShape: () => [classes],
    build: (encoder, rng) => ({ head: buildClipOrderHead(featureSizeOf(encoder), rng, clips, relationUnits) }),
    forward(encoder, { head }, inputs, training) {
      return tf.tidy(() => head.apply(encodeClips(encoder, inputs, training), { training }) as tf.Tensor);
    },
    loss: softmaxCrossEntropy,
    metric: categoricalAccuracy,
  };
}

/** The registered VCOP task: 3 clips of 4 frames, 2 frames apart, 6 order classes (see `createClipOrderTask`). */
export const clipOrder = createClipOrderTask();
