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
export const CPC_LENGTH = 8;
/** Steps ahead predicted from every context (k = 1..K) in the registered task. */
export const CPC_STEPS = 3;

/** Options of the CPC sampler and task. */
export interface CpcOptions {
  /** Frames per sequence (T). Default `CPC_LENGTH`. */
  length?: number;
  /** Steps ahead predicted from each context, k = 1..K, each with its own `W_k`. Default `CPC_STEPS`. */
  steps?: number;
  /** Input frames between two frames of a sequence. Default 1. */
  gap?: number;
  /** Input frames between the starts of consecutive sequences. Default 4. */
  stride?: number;
  /** Units of the autoregressive GRU (the size of `c_t`). Default 32. */
  contextUnits?: number;
}

type ResolvedCpcOptions = Required<CpcOptions>;

function validateCpcOptions(options: CpcOptions): ResolvedCpcOptions {
  const { length = CPC_LENGTH, steps = CPC_STEPS, gap = 1, stride = 4, contextUnits = 32 } = options;
  if (!Number.isInteger(length) || length < 2)
    throw new OptionError('length', length, 'an integer >= 2 (a context frame plus at least one predicted frame)');
  if (!Number.isInteger(steps) || steps < 1 || steps >= length)
    throw new OptionError('steps', steps, `an integer from 1 to length - 1 = ${length - 1}`);
  for (const [name, value] of [
    ['gap', gap],
    ['stride', stride],
    ['contextUnits', contextUnits],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) throw new OptionError(name, value, 'a positive integer');
  }
  return { length, steps, gap, stride, contextUnits };
}

/**
 * The CPC sampler: sequences of `length` frames, `gap` apart, inside one scene (`detectSceneCuts` then
 * `windowFrames({ withinScene })`), as one input `[T, H, W, C]`. There is nothing to label; the label is a
 * constant 0 (the targets follow from the batch layout, see `cpcTargets`).
 *
 * @example
 * frames$.pipe(sampleSequences({ rng: new Rng(1) }, { length: 8 }));
 */
export function sampleSequences(_context: SamplerContext, options: CpcOptions = {}): OperatorFunction<Frame, Sample> {
  const { length, gap, stride } = validateCpcOptions({ ...options, steps: 1 });
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

/** One prediction of a sequence: the context at step `t` predicts the frame `k` steps ahead. */
export interface CpcPair {
  t: number;
  k: number;
}

/**
 * Every prediction CPC makes in a sequence of `length` frames with `steps` ahead, in score-row order: for k = 1..K,
 * every t with `t + k < T` (context from frame 0 on, as the paper predicts from every step). `T*K - K(K+1)/2` pairs.
 */
export function cpcPairs(length: number, steps: number): CpcPair[] {
  const pairs: CpcPair[] = [];
  for (let k = 1; k <= steps; k++) for (let t = 0; t + k < length; t++) pairs.push({ t, k });
  return pairs;
}

/**
 * The positive's column for each row of CPC scores `[batch, P, batch * T]` flattened to `[batch * P, batch * T]`:
 * row `(b, p)` with `p = (t, k)` (`cpcPairs`) targets the frame `t + k` of sequence `b`, column `b * T + t + k`.
 * Returns `[batch * P]` int32.
 */
export function cpcTargets(batch: number, length: number, steps: number): tf.Tensor1D {
  const pairs = cpcPairs(length, steps);
  const targets = new Int32Array(batch * pairs.length);
  for (let b = 0; b < batch; b++) pairs.forEach(({ t, k }, p) => (targets[b * pairs.length + p] = b * length + t + k));
  return tf.tensor1d(targets, 'int32');
}

/**
 * CPC's log-bilinear scores `f_k(x_{t+k}, c_t) = z_{t+k}^T W_k c_t` (van den Oord et al. 2018, eq. 3) of every
 * prediction against every frame embedding of the batch.
 *
 * @param predictions `[batch, T, K, F]`: `W_k c_t` for every step t and every k.
 * @param z `[batch, T, F]`: the frame embeddings.
 * @returns scores `[batch, P, batch * T]`, rows in `cpcPairs(T, K)` order; the predictions of a t with `t + k >= T`
 *   (nothing to predict) are left out.
 */
export function cpcScores(predictions: tf.Tensor4D, z: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => {
    const [batch, length, steps, featureSize] = predictions.shape;
    const pairs = cpcPairs(length, steps);
    // Row order of cpcPairs: for each k, t = 0..T-1-k. Slices, not a gather: wasm has no gradient for gather.
    const perStep = Array.from({ length: steps }, (_, j) =>
      tf.reshape(tf.slice(predictions, [0, 0, j, 0], [batch, length - j - 1, 1, featureSize]), [
        batch,
        length - j - 1,
        featureSize,
      ]),
    );
    const picked = perStep.length === 1 ? perStep[0]! : tf.concat(perStep, 1); // [B, P, F]
    const scores = tf.matMul(
      tf.reshape(picked, [batch * pairs.length, featureSize]),
      tf.reshape(z, [batch * length, featureSize]),
      false,
      true,
    ); // [B * P, B * T]
    return tf.reshape(scores, [batch, pairs.length, batch * length]);
  });
}

function flatScores(scores: tf.Tensor, steps: number): { logits: tf.Tensor2D; targets: tf.Tensor1D } {
  const [batch, rows, candidates] = scores.shape as [number, number, number];
  const length = candidates / batch;
  const pairs = Number.isInteger(length) ? cpcPairs(length, steps).length : NaN;
  if (rows !== pairs)
    throw new OptionError('scores', `[${scores.shape}]`, `[batch, P, batch * T] with P = ${pairs} for K = ${steps}`);
  return { logits: tf.reshape(scores, [batch * rows, candidates]), targets: cpcTargets(batch, length, steps) };
}

/**
 * CPC's InfoNCE (van den Oord et al. 2018, eq. 4) on scores `[batch, P, batch * T]` (`cpcScores`): each row, one
 * prediction `W_k c_t` of sequence `b`, must pick its true frame `z_{t+k}` of sequence `b` among every frame of the
 * batch, so the negatives are the other positions of the same sequence and every position of the other sequences.
 * The mean over all rows (every t, every k). Scalar.
 */
export function cpcLoss(scores: tf.Tensor, steps: number): tf.Scalar {
  return tf.tidy(() => {
    const { logits, targets } = flatScores(scores, steps);
    return infoNceFromLogits(logits, targets);
  });
}

/** Fraction of predictions whose best-scoring frame is the true future frame (chance `1 / (batch * T)`). */
export function cpcAccuracy(scores: tf.Tensor, steps: number): tf.Scalar {
  return tf.tidy(() => {
    const { logits, targets } = flatScores(scores, steps);
    return contrastiveAccuracy(logits, targets);
  });
}

/**
 * Fraction of predictions whose best-scoring frame among the `T` frames of their own sequence is the true future
 * frame: telling the future from the past and present of one video, which appearance alone cannot do (chance
 * `1 / T`). Scores `[batch, P, batch * T]`.
 */
export function cpcWithinSequenceAccuracy(scores: tf.Tensor, steps: number): tf.Scalar {
  return tf.tidy(() => {
    const [batch, rows, candidates] = scores.shape as [number, number, number];
    const length = candidates / batch;
    // [B, P, B, T] -> the B diagonal blocks [B, P, T]: each row against its own sequence only.
    const blocks = tf.reshape(scores, [batch, rows, batch, length]);
    const own = tf.sum(tf.mul(blocks, tf.reshape(tf.eye(batch), [batch, 1, batch, 1])), 2);
    const targets = tf.tensor1d(
      cpcPairs(length, steps).map(({ t, k }) => t + k),
      'int32',
    );
    const hits = tf.equal(tf.argMax(own, 2), tf.expandDims(targets, 0));
    return tf.mean(tf.cast(hits, 'float32')) as tf.Scalar;
  });
}

/**
 * CPC's head: the autoregressive model `g_ar`, a GRU over the frame embeddings `[batch, T, featureSize]` that
 * gives a context `c_t` at every step from `z_0..z_t` only (it is causal), then the K maps `W_k` as one bias-free
 * dense layer on every `c_t`. Output `[batch, T, K * featureSize]` (`W_1 c_t ... W_K c_t` laid end to end).
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
        inputShape: [length, featureSize],
        units,
        returnSequences: true,
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
 * Frame embeddings of sequences `[batch, T, H, W, C]` -> `[batch, T, F]`, one encoder call per time step. Batch
 * normalization in training mode normalizes each call by its own statistics: per step, they are those of the
 * `batch` frames at that step, one from each sequence, so `z_t` (and the context `c_t` built on `z_0..z_t`) depends
 * on no frame after `t`. One call over all `batch * T` frames would give every `z_t` the statistics of the
 * sequence's future frames, a channel through which the context can see what it is asked to predict.
 */
export function encodeSequences(encoder: tf.LayersModel, sequences: tf.Tensor, training: boolean): tf.Tensor3D {
  return tf.tidy(() => {
    const batch = sequences.shape[0];
    if (training && batch < 2) {
      throw new OptionError(
        '--batch',
        batch,
        'at least 2 for cpc (batch normalization runs over the frames of one time step, one per sequence)',
      );
    }
    const [, length, ...frame] = sequences.shape;
    // Slices of [batch, T, H*W*C], not tf.unstack(sequences, 1): the strided unstack costs ~20x more on wasm.
    const flat = tf.reshape(sequences, [batch, length!, -1]);
    const z = Array.from({ length: length! }, (_, t) => {
      const frames = tf.reshape(tf.slice(flat, [0, t, 0], [batch, 1, -1]), [batch, ...frame]); // [batch, H, W, C]
      return encoder.apply(frames, { training }) as tf.Tensor2D;
    });
    return tf.stack(z, 1) as tf.Tensor3D;
  });
}

/**
 * Contrastive Predictive Coding on frame sequences (van den Oord, Li and Vinyals 2018).
 *
 * The paper: an encoder `g_enc` maps each observation to `z_t`, an autoregressive GRU `g_ar` summarises `z_<=t`
 * into `c_t`, and for every step t and every k = 1..K a bilinear map `W_k` scores `z_{t+k}^T W_k c_t`; InfoNCE
 * picks the true `z_{t+k}` among negatives drawn from other positions and other sequences of the minibatch (audio:
 * K = 12, images: rows of patches). The follow-up (Hénaff et al. 2019, CPC v2) replaced batch normalization with
 * layer normalization because batch statistics let the patches of one image see each other.
 *
 * This task: `g_enc` is the shared frame encoder, `g_ar` a GRU in the head over T = 8 frames (`CPC_LENGTH`), K = 3
 * (`CPC_STEPS`) maps `W_k`, predictions from every t with `t + k < T`, and every frame of the batch as a
 * candidate (the true one, the other positions of the same sequence, all positions of the others). The shared
 * encoder keeps its batch normalization, as the other video tasks need it, but sees one time step per call
 * (`encodeSequences`), so no statistics are shared across time within a sequence. K is smaller than the audio
 * setting's 12 because a sequence here is 8 frames, not 128 steps of 10 ms.
 *
 * Input one `[T, H, W, C]` sequence per sample; predictions are scores `[batch, P, batch * T]` (`cpcScores`).
 *
 * @example
 * const longer = createCpcTask({ length: 12, steps: 4 });
 */
export function createCpcTask(options: CpcOptions = {}): PretextTask<Frame> {
  const resolved = validateCpcOptions(options);
  const { length, steps, contextUnits } = resolved;
  return {
    name: 'cpc',
    family: 'temporal',
    paper:
      'van den Oord, Li, Vinyals. Representation Learning with Contrastive Predictive Coding. arXiv:1807.03748, 2018',
    reads: 'frames',
    configure() {
      return this;
    },
    sampler: (context) => sampleSequences(context, resolved),
    inputShapes: (frameShape) => [[length, ...frameShape]],
    labelShape: () => [1],
    build: (encoder, rng) => ({ head: buildCpcHead(featureSizeOf(encoder), rng, length, steps, contextUnits) }),
    forward(encoder, { head }, inputs, training) {
      return tf.tidy(() => {
        const z = encodeSequences(encoder, inputs[0]!, training); // [B, T, F]
        const [batch, , featureSize] = z.shape;
        const predictions = head.apply(z, { training }) as tf.Tensor3D; // [B, T, K * F]: W_k c_t
        return cpcScores(tf.reshape(predictions, [batch, length, steps, featureSize]), z);
      });
    },
    loss: (_labels, scores) => cpcLoss(scores, steps),
    metric: (_labels, scores) => cpcAccuracy(scores, steps),
  };
}

/** The registered CPC task: T = 8 frames, K = 3 steps ahead (see `createCpcTask`). */
export const cpc = createCpcTask();
