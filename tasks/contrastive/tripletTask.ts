import { mlpHead } from '../../models/heads.ts';
import * as tf from '@tensorflow/tfjs';
import type { OperatorFunction } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import { frameToFloat, type Frame } from '../../pipeline/frame.ts';
import { Rng } from '../../core/rng.ts';
import { type PretextTask, type SamplerContext, type TaskFamily, type TaskState, featureSizeOf } from '../task.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { embeddingStd, l2Normalize } from '../losses/infoNce.ts';
import { tripletAccuracy, tripletLoss, type TripletDistance } from '../losses/triplet.ts';

/** Three frames (or patches resized to frames): the anchor, one like it and one unlike it. */
export interface Triplet {
  readonly anchor: Frame;
  readonly positive: Frame;
  readonly negative: Frame;
}

/** A triplet as a sample: inputs `[anchor, positive, negative]`; the label is a constant 1 (the positive is input 1). */
export function tripletSample(triplet: Triplet): Sample {
  return {
    inputs: [frameToFloat(triplet.anchor), frameToFloat(triplet.positive), frameToFloat(triplet.negative)],
    label: Float32Array.of(1),
    source: triplet.anchor.source,
  };
}

/**
 * A video's id as a number a `Float32Array` holds exactly (24 bits of FNV-1a of its name): what tells a batch's
 * negatives of other videos from those of the same one. Two names may share an id (1 in 16.7 million); their
 * patches are then merely not used as each other's negatives.
 */
export function sourceId(source: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < source.length; i++) hash = Math.imul(hash ^ source.charCodeAt(i), 0x01000193);
  return (hash >>> 0) & 0xffffff;
}

/**
 * A triplet as a sample for a task that mines negatives from its batch (`TripletTaskSpec.batchNegatives`): inputs
 * `[anchor, positive, negative, videos]`, where `videos` is `[sourceId(anchor video), sourceId(negative video)]`.
 */
export function tripletSampleWithVideos(triplet: Triplet): Sample {
  const sample = tripletSample(triplet);
  const videos = Float32Array.of(sourceId(triplet.anchor.source), sourceId(triplet.negative.source));
  return { ...sample, inputs: [...sample.inputs, videos] };
}

/** Negatives mined from the batch, as Wang and Gupta do after a warm-up with random ones. */
export interface BatchNegativesOptions {
  /** Negatives per pair taken from the batch (K): the other samples' patches of other videos. */
  negatives: number;
  /** Optimizer steps that take K random negatives of the batch before the K hardest are taken. */
  warmupSteps: number;
}

/**
 * Picks `k` negatives for each pair of a batch among the batch's patches of other videos. `embeddings` are the
 * batch's unit embeddings, `[3 * batch, dim]` row-major: the anchors, then the positives, then the samples' own
 * negatives; `videos` is `[batch, 2]`: each sample's anchor video and own-negative video (see `sourceId`).
 * `'hardest'` takes the `k` candidates nearest the anchor (largest dot product, so the largest triplet loss
 * whatever the margin; Wang and Gupta's hard negative mining); an `Rng` takes `k` at random. A pair with fewer
 * than `k` candidates fills the rest with its own negative. Returns `[batch * k]` row indices into `embeddings`.
 *
 * @example
 * pickBatchNegatives(embeddings, 32, videos, 4, 'hardest'); // Int32Array of batch * 4 rows
 */
export function pickBatchNegatives(
  embeddings: Float32Array,
  dim: number,
  videos: Float32Array,
  k: number,
  choose: 'hardest' | Rng,
): Int32Array {
  const batch = videos.length / 2;
  const videoOf = (row: number): number =>
    row < 2 * batch ? videos[(row % batch) * 2]! : videos[(row - 2 * batch) * 2 + 1]!;
  const picks = new Int32Array(batch * k);
  for (let i = 0; i < batch; i++) {
    const anchorVideo = videos[i * 2]!;
    let candidates: number[] = [];
    for (let row = 0; row < 3 * batch; row++) if (videoOf(row) !== anchorVideo) candidates.push(row);
    if (choose === 'hardest') {
      const similarity = (row: number): number => {
        let dot = 0;
        for (let d = 0; d < dim; d++) dot += embeddings[i * dim + d]! * embeddings[row * dim + d]!;
        return dot;
      };
      const scored = candidates.map((row) => ({ row, score: similarity(row) }));
      scored.sort((a, b) => b.score - a.score || a.row - b.row);
      candidates = scored.map((c) => c.row);
    } else {
      candidates = choose.shuffle(candidates);
    }
    for (let j = 0; j < k; j++) picks[i * k + j] = candidates[j] ?? 2 * batch + i;
  }
  return picks;
}

/** The optimizer steps a task has taken, checkpointed, so a resumed run knows whether its warm-up is over. */
class StepCounter implements TaskState {
  readonly #steps: tf.Variable;
  #count = 0;

  constructor() {
    const zero = tf.scalar(0, 'int32');
    this.#steps = tf.variable(zero, false);
    zero.dispose();
  }

  get count(): number {
    return this.#count;
  }
  tensors(): tf.NamedTensorMap {
    return { steps: this.#steps };
  }
  restore(saved: tf.NamedTensorMap): void {
    tf.tidy(() => this.#steps.assign(tf.cast(saved.steps!, 'int32')));
    this.#count = this.#steps.dataSync()[0]!;
  }
  afterStep(): void {
    this.#count++;
    tf.tidy(() => this.#steps.assign(tf.scalar(this.#count, 'int32')));
  }
  dispose(): void {
    this.#steps.dispose();
  }
}

/** An embedding head: dense(64, ReLU) then a linear projection to `dim` (the encoder's features stay general). */
export function buildEmbeddingHead(featureSize: number, rng: Rng, name: string, dim = 32): tf.LayersModel {
  return mlpHead(name, featureSize, [{ units: 64, activation: 'relu' }, { units: dim }], rng);
}

/**
 * Unit-length embeddings of a batch of frames: `[n, H, W, C] -> [n, dim]` through the shared encoder and a head
 * (the stream operator that embeds decoded frames for `tempo-ssl embed` is `embedFrames` in models/).
 */
export function projectFrames(
  encoder: tf.LayersModel,
  head: tf.LayersModel,
  frames: tf.Tensor,
  training = false,
): tf.Tensor2D {
  return tf.tidy(() => l2Normalize(head.apply(encoder.apply(frames, { training }), { training }) as tf.Tensor2D));
}

/** What differs between triplet tasks: their identity and how they pick triplets. */
export interface TripletTaskSpec<Raw> {
  name: string;
  family: TaskFamily;
  paper: string;
  /** From raw items to triplet samples (see `tripletSample`; `tripletSampleWithVideos` with `batchNegatives`). */
  sampler(context: SamplerContext): OperatorFunction<Raw, Sample>;
  /** Margin of the triplet loss, in units of `distance`. Default 0.2. */
  margin?: number;
  /** Distance of the loss (see `TripletDistance`). Default 'squared-euclidean'. */
  distance?: TripletDistance;
  /**
   * Train on negatives taken from the batch (Wang and Gupta, ICCV 2015): random ones during a warm-up, then for
   * each pair the hardest. Samples must then carry their videos (`tripletSampleWithVideos`). Default: each
   * sample's own negative only.
   */
  batchNegatives?: BatchNegativesOptions;
}

/**
 * The shared base of the metric-learning video tasks (frame similarity, TCN, tracking): three inputs of the
 * frame shape embedded siamese by the shared encoder plus an embedding head, the triplet loss, and the fraction
 * of triplets ranked right as the metric (chance 0.5). Predictions are the unit embeddings `[batch, 3, dim]`
 * (anchor, positive, the sample's own negative); the constant label is not used by the loss.
 *
 * With `batchNegatives` (tracking), training predictions are `[batch, 3 + k, dim]`: the k negatives of each pair
 * taken from the batch (`pickBatchNegatives`; random during the warm-up, then the hardest) follow the own negative.
 * The loss then uses the k batch negatives and the metric the own negative, so the logged accuracy stays the
 * rate against a random negative of another video before and after the warm-up. The step count is task state, so
 * a resumed run mines as the killed one would have.
 *
 * @example
 * export const frameSimilarity = tripletTask({ name: 'frame-sim', family: 'temporal', paper: '...', sampler: (c) => sampleFrameTriplets(c) });
 */
export function tripletTask<Raw>(spec: TripletTaskSpec<Raw>): PretextTask<Raw> {
  const { margin = 0.2, distance = 'squared-euclidean', batchNegatives } = spec;
  if (!(margin > 0)) throw new OptionError('margin', margin, 'a positive number');
  if (batchNegatives) {
    const { negatives, warmupSteps } = batchNegatives;
    if (!Number.isInteger(negatives) || negatives < 1)
      throw new OptionError('batchNegatives.negatives', negatives, 'a positive integer (negatives per pair)');
    if (!Number.isInteger(warmupSteps) || warmupSteps < 0)
      throw new OptionError('batchNegatives.warmupSteps', warmupSteps, 'a non-negative integer (steps)');
  }
  return {
    name: spec.name,
    family: spec.family,
    paper: spec.paper,
    reads: 'frames',
    configure() {
      return this;
    },
    sampler: (context) => spec.sampler(context),
    inputShapes: (frameShape) => [[...frameShape], [...frameShape], [...frameShape], ...(batchNegatives ? [[2]] : [])],
    labelShape: () => [1],
    build: (encoder, rng) => ({
      head: buildEmbeddingHead(featureSizeOf(encoder), rng, `${spec.name.replace(/\W/g, '_')}_head`),
      ...(batchNegatives ? { state: new StepCounter() } : {}),
    }),
    forward(encoder, { head, state }, inputs, training) {
      return tf.tidy(() => {
        const batch = inputs[0]!.shape[0];
        // One encoder call on [3 * batch, H, W, C] instead of three: same weights, one third of the dispatches.
        const embeddings = projectFrames(encoder, head, tf.concat(inputs.slice(0, 3), 0), training);
        const triplets = tf.transpose(tf.reshape(embeddings, [3, batch, -1]), [1, 0, 2]); // [batch, 3, dim]
        if (!batchNegatives || !training || !(state instanceof StepCounter)) return triplets;
        const { negatives: k, warmupSteps } = batchNegatives;
        // The choice reads values, so it happens off the gradient tape; gradients flow through the selection, a
        // product with one-hot rows [batch * k, 3 * batch] (gather's gradient has no wasm kernel).
        const choose = state.count < warmupSteps ? new Rng(state.count * 7919 + 1) : 'hardest';
        const dim = embeddings.shape[1];
        const videos = inputs[3]!.dataSync() as Float32Array;
        const picks = pickBatchNegatives(embeddings.dataSync() as Float32Array, dim, videos, k, choose);
        const select = tf.cast(tf.oneHot(tf.tensor1d(picks, 'int32'), 3 * batch), 'float32');
        const mined = tf.reshape(tf.matMul(select, embeddings), [batch, k, dim]);
        return tf.concat([triplets, mined], 1);
      });
    },
    loss: (_labels, predictions) =>
      tf.tidy(() => {
        const n = predictions.shape[1]!;
        if (n <= 3) return tripletLoss(predictions, margin, distance);
        // Anchor, positive and the batch negatives (the own negative, index 2, is left to the metric).
        const pair = tf.slice(predictions, [0, 0, 0], [-1, 2, -1]);
        const mined = tf.slice(predictions, [0, 3, 0], [-1, n - 3, -1]);
        return tripletLoss(tf.concat([pair, mined], 1), margin, distance);
      }),
    metric: (_labels, predictions) =>
      tf.tidy(() => tripletAccuracy(tf.slice(predictions, [0, 0, 0], [-1, 3, -1]), distance)),
    /** The collapse signal of the anchors' embeddings (about 1/sqrt(dim) when healthy, 0 when collapsed). */
    monitors: {
      embeddingStd: (predictions) =>
        tf.tidy(() =>
          embeddingStd(tf.reshape(tf.slice(predictions, [0, 0, 0], [-1, 1, -1]), [predictions.shape[0]!, -1])),
        ),
    },
  };
}
