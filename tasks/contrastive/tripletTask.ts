import { mlpHead } from '../../models/heads.ts';
import * as tf from '@tensorflow/tfjs';
import type { OperatorFunction } from 'rxjs';
import { frameToFloat, type Frame } from '../../pipeline/frame.ts';
import type { Rng } from '../../core/rng.ts';
import { type PretextTask, type SamplerContext, type TaskFamily, featureSizeOf } from '../task.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { l2Normalize } from '../losses/infoNce.ts';
import { tripletAccuracy, tripletLoss } from '../losses/triplet.ts';

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
  /** From raw items to triplet samples (see `tripletSample`). */
  sampler(context: SamplerContext): OperatorFunction<Raw, Sample>;
  /** Margin of the triplet loss. Default 0.2. */
  margin?: number;
}

/**
 * The shared base of the metric-learning video tasks (frame similarity, TCN, tracking): three inputs of the
 * frame shape embedded siamese by the shared encoder plus an embedding head, the triplet loss, and the fraction
 * of triplets ranked right as the metric (chance 0.5). Predictions are the unit embeddings `[batch, 3, dim]`;
 * the constant label is not used by the loss.
 *
 * @example
 * export const frameSimilarity = tripletTask({ name: 'frame-sim', family: 'temporal', paper: '...', sampler: (c) => sampleFrameTriplets(c) });
 */
export function tripletTask<Raw>(spec: TripletTaskSpec<Raw>): PretextTask<Raw> {
  const margin = spec.margin ?? 0.2;
  return {
    name: spec.name,
    family: spec.family,
    paper: spec.paper,
    reads: 'frames',
    configure() {
      return this;
    },
    sampler: (context) => spec.sampler(context),
    inputShapes: (frameShape) => [[...frameShape], [...frameShape], [...frameShape]],
    labelShape: () => [1],
    build: (encoder, rng) => ({
      head: buildEmbeddingHead(featureSizeOf(encoder), rng, `${spec.name.replace(/\W/g, '_')}_head`),
    }),
    forward(encoder, { head }, inputs, training) {
      return tf.tidy(() => {
        const batch = inputs[0]!.shape[0];
        // One encoder call on [3 * batch, H, W, C] instead of three: same weights, one third of the dispatches.
        const embeddings = projectFrames(encoder, head, tf.concat(inputs, 0), training);
        return tf.transpose(tf.reshape(embeddings, [3, batch, -1]), [1, 0, 2]);
      });
    },
    loss: (_labels, predictions) => tripletLoss(predictions, margin),
    metric: (_labels, predictions) => tripletAccuracy(predictions),
  };
}
