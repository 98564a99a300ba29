import * as tf from '@tensorflow/tfjs';
import { map, pipe, type OperatorFunction } from 'rxjs';
import { detectSceneCuts } from '../../pipeline/detectSceneCuts.ts';
import { OptionError } from '../../core/errors.ts';
import { frameToFloat, type Frame } from '../../pipeline/frame.ts';
import type { Rng } from '../../core/rng.ts';
import { windowFrames } from '../../pipeline/windowFrames.ts';
import { contrastiveAccuracy, infoNceFromLogits } from '../losses/infoNce.ts';
import { type PretextTask, type SamplerContext, featureSizeOf } from '../task.ts';
import type { Sample } from '../../pipeline/sample.ts';

/** Frames per CPC sequence (T) in the registered task. */
export const CPC_LENGTH = 6;
/** Steps ahead predicted from the context (K): the context is the first `T - K` frames. */
export const CPC_STEPS = 2;

/** Options of the CPC sampler. */
export interface CpcSamplerOptions {
  /** Frames per sequence (T). Default `CPC_LENGTH`. */
  length?: number;
  /** Frames between two frames of a sequence. Default 1. */
  gap?: number;
  /** Frames between the starts of consecutive sequences. Default 3. */
  stride?: number;
}

/**
 * The CPC sampler: sequences of `length` frames, `gap` apart, inside one scene (`detectSceneCuts` then
 * `windowFrames({ withinScene })`), as one input `[T, H, W, C]`. There is nothing to label; the label is a
 * constant 0 (the targets follow from the batch layout, see `cpcLoss`).
 *
 * @example
 * frames$.pipe(sampleSequences({ rng: new Rng(1) }, { length: 6 }));
 */
export function sampleSequences(
  _context: SamplerContext,
  options: CpcSamplerOptions = {},
): OperatorFunction<Frame, Sample> {
  const { length = CPC_LENGTH, gap = 1, stride = 3 } = options;
  if (!Number.isInteger(length) || length < 2)
    throw new OptionError('length', length, 'an integer >= 2 (context plus at least one predicted frame)');
  for (const [name, value] of [
    ['gap', gap],
    ['stride', stride],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) throw new OptionError(name, value, 'a positive integer');
  }
  return pipe(
    detectSceneCuts<Frame>(),
    windowFrames({ size: length, step: gap, stride, withinScene: true }),
    map((frames) => {
      const size = frames[0]!.data.length;
      const input = new Float32Array(length * size);
      frames.forEach((f, t) => input.set(frameToFloat(f), t * size));
      return { inputs: [input], label: Float32Array.of(0), source: frames[0]!.source };
    }),
  );
}

/**
 * The positive's column for each `(b, k)` row of CPC scores `[batch, K, batch * T]`: the frame `T - K + k` of
 * sequence `b`, i.e. `b * T + T - K + k`. Returns `[batch * K]` int32.
 */
export function cpcTargets(batch: number, length: number, steps: number): tf.Tensor1D {
  const targets = new Int32Array(batch * steps);
  for (let b = 0; b < batch; b++)
    for (let k = 0; k < steps; k++) targets[b * steps + k] = b * length + length - steps + k;
  return tf.tensor1d(targets, 'int32');
}

function flatScores(scores: tf.Tensor): { logits: tf.Tensor2D; targets: tf.Tensor1D } {
  const [batch, steps, candidates] = scores.shape as [number, number, number];
  return {
    logits: tf.reshape(scores, [batch * steps, candidates]),
    targets: cpcTargets(batch, candidates / batch, steps),
  };
}

/**
 * CPC's InfoNCE (van den Oord et al. 2018) on log-bilinear scores `[batch, K, batch * T]`: row `(b, k)` scores the
 * prediction `W_k c_b` against every frame embedding of the batch (every time step of every sequence); the
 * positive is the true frame `k + 1` steps after the context (`cpcTargets`), the negatives all other time steps
 * of the same sequence and of the other sequences. Scalar.
 */
export function cpcLoss(scores: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const { logits, targets } = flatScores(scores);
    return infoNceFromLogits(logits, targets);
  });
}

/** Fraction of predictions whose best-scoring frame is the true future frame (chance `1 / (batch * T)`). */
export function cpcAccuracy(scores: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const { logits, targets } = flatScores(scores);
    return contrastiveAccuracy(logits, targets);
  });
}

/**
 * CPC's head: a GRU summarising the context embeddings `[batch, T - K, featureSize]` into `c` `[batch, units]`,
 * and the K bilinear maps `W_k` as one bias-free dense layer, output `[batch, K * featureSize]` (`W_k c` laid end to end).
 */
export function buildCpcHead(
  featureSize: number,
  rng: Rng,
  length = CPC_LENGTH,
  steps = CPC_STEPS,
  units = 32,
): tf.LayersModel {
  const seed = rng.int(2 ** 31);
  return tf.sequential({
    name: 'cpc_head',
    layers: [
      tf.layers.gru({
        inputShape: [length - steps, featureSize],
        units,
        kernelInitializer: tf.initializers.glorotUniform({ seed }),
        // Glorot rather than the usual orthogonal: tfjs's orthogonal init warns and is slow past 2000 weights.
        recurrentInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
        name: 'context_gru',
      }),
      tf.layers.dense({
        units: steps * featureSize,
        useBias: false,
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2 }),
        name: 'predict_w_k',
      }),
    ],
  });
}

/**
 * Contrastive Predictive Coding on frame sequences (van den Oord, Li and Vinyals 2018): the shared encoder embeds
 * each frame (`z_t`), a GRU in the head reads the first `T - K` embeddings into a context `c`, and `W_k c` must
 * score the true `z_{T-K+k}` above every other frame embedding in the batch (InfoNCE). Input one `[T, H, W, C]`
 * sequence per sample; predictions are scores `[batch, K, batch * T]`.
 */
export const cpc = {
  name: 'cpc',
  family: 'temporal',
  paper:
    'van den Oord, Li, Vinyals. Representation Learning with Contrastive Predictive Coding. arXiv:1807.03748, 2018',
  reads: 'frames',
  configure() {
    return this;
  },
  sampler: (context) => sampleSequences(context),
  inputShapes: (frameShape) => [[CPC_LENGTH, ...frameShape]],
  labelShape: () => [1],
  build: (encoder, rng) => ({ head: buildCpcHead(featureSizeOf(encoder), rng) }),
  forward(encoder, { head }, inputs, training) {
    return tf.tidy(() => {
      const [batch, length, ...frame] = inputs[0]!.shape as number[];
      const z = encoder.apply(tf.reshape(inputs[0]!, [batch! * length!, ...frame]), { training }) as tf.Tensor2D; // [B*T, F]
      const featureSize = z.shape[1];
      const context = tf.slice(
        tf.reshape(z, [batch!, length!, featureSize]),
        [0, 0, 0],
        [batch!, length! - CPC_STEPS, featureSize],
      );
      const predictions = tf.reshape(head.apply(context, { training }) as tf.Tensor, [batch! * CPC_STEPS, featureSize]); // [B*K, F]
      return tf.reshape(tf.matMul(predictions, z, false, true), [batch!, CPC_STEPS, batch! * length!]);
    });
  },
  loss: (_labels, scores) => cpcLoss(scores),
  metric: (_labels, scores) => cpcAccuracy(scores),
} satisfies PretextTask<Frame>;
