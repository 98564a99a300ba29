import * as tf from '@tensorflow/tfjs';
import { map, type OperatorFunction } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import { mlpHead } from '../../models/heads.ts';
import { type Frame, frameToFloat } from '../../pipeline/frame.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { embeddingStd } from '../losses/infoNce.ts';
import { featureSizeOf, type PretextTask } from '../task.ts';

/** The mutual-information estimators of DIM's objective. */
export type DimEstimator = 'jsd' | 'infonce';

/** Options of {@link createDimTask}. */
export interface DimOptions {
  /** The estimator: 'jsd' (the paper's default, a Jensen-Shannon bound) or 'infonce'. Default 'jsd'. */
  estimator?: DimEstimator;
  /**
   * The encoder layer whose feature map `[H, W, C]` gives the local features. Default: the block before the last
   * (`relu1` of the default 3-block encoder, 7x7 on 28x28 frames), as the paper reads a conv map of a few pixels a
   * side before the last layers; the last block when the encoder has one.
   */
  layer?: string;
  /** Units of the discriminator's two embeddings (global and local), whose dot product is the score. Default 64. */
  units?: number;
}

/**
 * Scores `[batch, batch, positions]` of embeddings `[batch, 1 + positions, d]` (row 0 each image's global
 * embedding, the rest its local ones): entry (i, j, n) is the dot product of image i's global embedding and image j's
 * local embedding at position n; the positives are j = i.
 */
export function dimScores(embeddings: tf.Tensor): tf.Tensor3D {
  return tf.tidy(() => {
    const [batch, rows, d] = embeddings.shape as [number, number, number];
    const positions = rows - 1;
    const globals = tf.reshape(tf.slice(embeddings, [0, 0, 0], [-1, 1, -1]), [batch, d]);
    const locals = tf.reshape(tf.slice(embeddings, [0, 1, 0], [-1, -1, -1]), [batch * positions, d]);
    return tf.reshape(tf.matMul(globals, locals, false, true), [batch, batch, positions]) as tf.Tensor3D;
  });
}

/**
 * DIM's loss on scores `[batch, batch, positions]` (positives on the diagonal of the first two axes), the negated
 * mutual-information estimate:
 * - 'jsd': E_pos[softplus(-s)] + E_neg[softplus(s)], negatives every other image's local feature at each position
 *   (the paper's Jensen-Shannon estimator, eq. 4).
 * - 'infonce': for each image i and position n, -log(e^s(i,i,n) / (e^s(i,i,n) + Σ over j ≠ i and every position m
 *   of e^s(i,j,m))): the local feature's own global vector against the global's scores with every other image's
 *   local features (the paper's eq. 5).
 */
export function dimLoss(scores: tf.Tensor, estimator: DimEstimator): tf.Scalar {
  return tf.tidy(() => {
    const [batch, , positions] = scores.shape as [number, number, number];
    const positive = tf.reshape(tf.eye(batch), [batch, batch, 1]);
    if (estimator === 'jsd') {
      const onPositives = tf.div(tf.sum(tf.mul(tf.softplus(tf.neg(scores)), positive)), batch * positions);
      const negatives = Math.max(batch * (batch - 1) * positions, 1);
      const onNegatives = tf.div(tf.sum(tf.mul(tf.softplus(scores), tf.sub(1, positive))), negatives);
      return tf.add(onPositives, onNegatives) as tf.Scalar;
    }
    // log(e^p + Σ e^neg) - p = softplus(logsumexp(neg) - p); the negatives' sum is the same for every position.
    const masked = tf.sub(scores, tf.mul(positive, 1e9));
    const negativeLse = tf.logSumExp(tf.reshape(masked, [batch, -1]), 1, true); // [batch, 1]
    const ownScores = tf.sum(tf.mul(scores, positive), 1); // [batch, positions]
    return tf.mean(tf.softplus(tf.sub(negativeLse, ownScores))) as tf.Scalar;
  });
}

/**
 * Top-1 over images: for each image's global embedding and each position, how often its own local feature scores
 * highest among the batch's local features at that position (chance 1 / batch).
 */
export function dimAccuracy(scores: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const [batch, , positions] = scores.shape as [number, number, number];
    const own = tf.tile(tf.reshape(tf.range(0, batch, 1, 'int32'), [batch, 1]), [1, positions]);
    return tf.mean(tf.cast(tf.equal(tf.argMax(scores, 1), own), 'float32')) as tf.Scalar;
  });
}

/** Names of the encoder's layers whose output is a feature map `[batch, H, W, C]`, ending with a ReLU, in order. */
function featureMapLayers(encoder: tf.LayersModel): string[] {
  return encoder.layers
    .filter((l) => l.getClassName() === 'ReLU' || l.getClassName() === 'Activation')
    .filter((l) => (l.output as tf.SymbolicTensor).shape.length === 4)
    .map((l) => l.name);
}

/** The layer of `encoder` a DIM task reads its local features from (checked). */
export function dimLayer(encoder: tf.LayersModel, layer?: string): string {
  const maps = featureMapLayers(encoder);
  if (layer === undefined) {
    if (maps.length === 0)
      throw new OptionError('encoder', encoder.name, 'an encoder with a conv feature map (a ReLU of rank 4) for dim');
    return maps[Math.max(maps.length - 2, 0)]!;
  }
  if (!maps.includes(layer)) throw new OptionError('layer', layer, `a feature map layer: ${maps.join(', ')}`);
  return layer;
}

/**
 * Models from an encoder's input to [a feature map, its output], one per encoder and layer; they share the
 * encoder's weights and own none, so they are never disposed (disposing would release the encoder's layers).
 */
const mapModels = new WeakMap<tf.LayersModel, Map<string, tf.LayersModel>>();

function mapModelOf(encoder: tf.LayersModel, layer: string): tf.LayersModel {
  const byLayer = mapModels.get(encoder) ?? new Map<string, tf.LayersModel>();
  mapModels.set(encoder, byLayer);
  let model = byLayer.get(layer);
  if (!model) {
    const feature = encoder.getLayer(layer).output as tf.SymbolicTensor;
    model = tf.model({ inputs: encoder.inputs, outputs: [feature, encoder.outputs[0]!] });
    byLayer.set(layer, model);
  }
  return model;
}

/**
 * Deep InfoMax, local (Hjelm, Fedorov, Lavoie-Marchildon, Grewal, Bachman, Trischler, Bengio, ICLR 2019, "Learning
 * deep representations by mutual information estimation and maximization"): the encoder's global vector should
 * carry what every position of an intermediate feature map has in common. A discriminator scores (global vector,
 * local feature) pairs: the pairs of one image are positives, a global vector with another image's local features
 * in the batch are negatives; maximizing a lower bound of their mutual information (Jensen-Shannon by default, or
 * InfoNCE) trains the encoder. The encoder's output is the representation.
 *
 * The paper: a DCGAN-like conv encoder (or AlexNet / ResNet) on CIFAR, Tiny ImageNet, STL-10, the local map a conv
 * layer of 8x8 (or so) positions, a 64-d global vector, the "encoder-and-dot" discriminator (the global vector
 * and each local feature embedded by MLPs / 1x1 convs to 2048-d, the score their dot product), local DIM weighted 1
 * beside a global DIM term (0 in its best local runs) and an adversarial prior-matching term on the global
 * vector (weight 0.1), Adam, no augmentation.
 *
 * This: local DIM on the shared encoder, the local map the block before the last (7x7 on 28x28 frames), the
 * encoder-and-dot discriminator with `units`-d embeddings (default 64: an MLP on the global vector, the same
 * dense MLP on each position, which is a 1x1 conv), negatives every other image of the batch at every position, the
 * JSD estimator (`dim`) or InfoNCE (`dim-infonce`), Adam, no augmentation. Differences, and why: no prior matching
 * (it shapes the global vector's distribution for generation-like uses and needs an adversarial network; the
 * paper's classification results hold without it); no global DIM term (the paper's local-only runs did as well or
 * better on classification); 64-d discriminator embeddings, not 2048, to match the 64-d encoder output. The
 * predictions are the embeddings `[batch, 1 + positions, units]` (row 0 the global one), so the loss, the metric
 * (`dimAccuracy`) and the collapse signal (`embeddingStd` of the global embeddings) read them alone.
 *
 * @example
 * const task = createDimTask({ estimator: 'infonce', layer: 'relu1' });
 */
export function createDimTask(options: DimOptions = {}): PretextTask<Frame> {
  const estimator = options.estimator ?? 'jsd';
  const units = options.units ?? 64;
  if (estimator !== 'jsd' && estimator !== 'infonce')
    throw new OptionError('estimator', estimator, "'jsd' or 'infonce'");
  if (!Number.isInteger(units) || units < 1) throw new OptionError('units', units, 'a positive integer');
  const name = estimator === 'jsd' ? 'dim' : 'dim-infonce';
  const layerOf = new WeakMap<tf.LayersModel, string>();
  return {
    name,
    family: 'contrastive',
    paper:
      'Hjelm, Fedorov, Lavoie-Marchildon, Grewal, Bachman, Trischler, Bengio. Learning deep representations by mutual information estimation and maximization. ICLR 2019',
    reads: 'images',
    configure(setup) {
      const [height, width] = setup.itemShape;
      if (setup.itemShape.length !== 3 || !(height! >= 8 && width! >= 8))
        throw new OptionError('--width/--height', setup.itemShape, `frames of at least 8 x 8 pixels for ${name}`);
      return this;
    },
    sampler: (): OperatorFunction<Frame, Sample> =>
      map((frame) => ({ inputs: [frameToFloat(frame)], label: new Float32Array(1), source: frame.source })),
    inputShapes: (itemShape) => [[...itemShape]],
    labelShape: () => [1],
    build(encoder, rng) {
      const layer = dimLayer(encoder, options.layer);
      layerOf.set(encoder, layer);
      const channels = (encoder.getLayer(layer).output as tf.SymbolicTensor).shape[3]!;
      const embedding = (part: string, inputs: number) =>
        mlpHead(`${name.replace('-', '_')}_${part}`, inputs, [{ units, activation: 'relu' }, { units }], rng);
      return { head: embedding('global', featureSizeOf(encoder)), extra: { local: embedding('local', channels) } };
    },
    forward(encoder, { head, extra }, inputs, training) {
      const model = mapModelOf(encoder, layerOf.get(encoder) ?? dimLayer(encoder, options.layer));
      return tf.tidy(() => {
        const images = inputs[0]!;
        const [batch] = images.shape;
        const [featureMap, features] = model.apply(images, { training }) as [tf.Tensor4D, tf.Tensor2D];
        const [, h, w, c] = featureMap.shape;
        const globals = head.apply(features, { training }) as tf.Tensor2D;
        const locals = extra!.local!.apply(tf.reshape(featureMap, [batch! * h * w, c]), { training }) as tf.Tensor2D;
        return tf.concat([tf.expandDims(globals, 1), tf.reshape(locals, [batch!, h * w, units])], 1);
      });
    },
    loss: (_labels, embeddings) => tf.tidy(() => dimLoss(dimScores(embeddings), estimator)),
    /** Top-1 over the batch's images at each position (chance 1 / batch): see `dimAccuracy`. */
    metric: (_labels, embeddings) => tf.tidy(() => dimAccuracy(dimScores(embeddings))),
    monitors: {
      /** The collapse signal: spread of the global embeddings (about 1/sqrt(units) healthy, 0 collapsed). */
      embeddingStd: (embeddings) =>
        tf.tidy(() =>
          embeddingStd(tf.reshape(tf.slice(embeddings, [0, 0, 0], [-1, 1, -1]), [embeddings.shape[0]!, -1])),
        ),
    },
  };
}

/** Local DIM with the Jensen-Shannon estimator, the paper's default (`--tasks dim`). */
export const dim = createDimTask({ estimator: 'jsd' });

/** Local DIM with the InfoNCE estimator (`--tasks dim-infonce`). */
export const dimInfonce = createDimTask({ estimator: 'infonce' });
