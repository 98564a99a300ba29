import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../../core/errors.ts';
import { mlpHead } from '../../models/heads.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { contrastiveAccuracy, embeddingStd } from '../losses/infoNce.ts';
import { featureSizeOf, type PretextTask } from '../task.ts';
import { ntXentLogits, resolveViewPairOptions, viewPairTask, type ViewPairOptions } from './simclr.ts';

/** Options of {@link createBarlowTwinsTask}. */
export interface BarlowTwinsOptions extends ViewPairOptions {
  /**
   * Units of the projector's hidden layer and output D. Default: twice the encoder's feature size, both (the paper:
   * 8192-8192-8192, and more units kept helping).
   */
  projection?: readonly [number, number];
  /**
   * Weight λ of the redundancy (off-diagonal) term. Default: the paper's 5e-3 (at D = 8192 and batches of 2048)
   * scaled to the run's D and batch by {@link barlowLambda}.
   */
  lambda?: number;
}

/**
 * The paper's λ (5e-3 at D = 8192 units and batches of 2048) scaled to `units` and `batch`, keeping what the
 * redundancy term costs for units that are uncorrelated in truth the paper's: each off-diagonal entry of a batch's
 * cross-correlation is then noise of variance about 1 / batch, so a row's D - 1 of them add λ (D - 1) / batch
 * (0.02 in the paper). λ = 0.02 · batch / (D - 1): 5e-3 for D = 64 at batches of 16, 0.01 for D = 128 at 64. Keeping
 * λ (D - 1) alone (41, λ = 0.65 at D = 64) lets that noise outweigh the invariance term at small batches: a test run
 * learned nothing (held-out partner retrieval 0.156, random init 0.227; λ = 5e-3 gave 0.359).
 */
export function barlowLambda(units: number, batch: number): number {
  return (((5e-3 * 8191) / 2048) * batch) / Math.max(units - 1, 1);
}

/**
 * The Barlow Twins loss of projections `[batch, 2, D]`: each view's embeddings normalized over the batch (zero mean,
 * unit standard deviation per unit), their cross-correlation C = z1ᵀ z2 / batch `[D, D]`, and
 * Σᵢ (1 - Cᵢᵢ)² + λ Σᵢ Σⱼ≠ᵢ Cᵢⱼ²: the diagonal pushed to 1 (invariance to the augmentation), the rest to 0
 * (no redundancy between units).
 */
export function barlowTwinsLoss(projections: tf.Tensor, lambda: number): tf.Scalar {
  return tf.tidy(() => {
    const [batch, , d] = projections.shape as [number, number, number];
    const normed = [0, 1].map((v) => {
      const z = tf.reshape(tf.slice(projections, [0, v, 0], [-1, 1, -1]), [batch, d]);
      const { mean, variance } = tf.moments(z, 0, true);
      return tf.div(tf.sub(z, mean), tf.sqrt(tf.add(variance, 1e-5)));
    });
    const c = tf.div(tf.matMul(normed[0]!, normed[1]!, true, false), batch);
    const eye = tf.eye(d);
    const onDiagonal = tf.sum(tf.square(tf.sub(tf.sum(tf.mul(c, eye), 1), 1)));
    const offDiagonal = tf.sum(tf.square(tf.mul(c, tf.sub(1, eye))));
    return tf.add(onDiagonal, tf.mul(offDiagonal, lambda)) as tf.Scalar;
  });
}

/**
 * Barlow Twins (Zbontar, Jing, Misra, LeCun, Deny, ICML 2021, "Barlow Twins: Self-Supervised Learning via Redundancy
 * Reduction"): two augmentations of each image go through the same encoder and a projector; the loss drives the
 * cross-correlation matrix of the two views' batch-normalized embeddings to the identity: the same unit agrees
 * across views (invariance), different units are decorrelated (which also rules out collapse, without negatives,
 * momentum encoders or predictors). The encoder's output is the representation.
 *
 * The paper: ResNet-50, projector 8192-8192-8192 (batch norm and ReLU after the first two layers), λ = 5e-3,
 * LARS, batches of 2048, BYOL's augmentation, 1000 epochs.
 *
 * This: the same loss and views (SimCLR's, `simclr`'s options: crop area 0.3 to 1) on the shared encoder, a
 * projector featureSize-2·featureSize (batch norm, ReLU)-2·featureSize, Adam. Differences, and why: the projector
 * is 64-128-128 on the default encoder, not 8192 wide (the encoder's output is 64-d; a CPU step stays cheap); λ is
 * scaled to D and the batch so that the redundancy term costs uncorrelated units what it does in the paper,
 * λ (D - 1) / batch = 0.02 (`barlowLambda`: 5e-3 at D = 64 and batches of 16, 0.01 at D = 128 and 64; scaling by D
 * alone lets a small batch's noisy correlations outweigh the invariance term); one projector layer fewer (its
 * hidden layer has batch norm and ReLU as the paper's). The pretext metric is simclr's: how often a view's
 * nearest other view (cosine of projections) in the batch is its partner.
 *
 * @example
 * const task = createBarlowTwinsTask({ projection: [128, 256] });
 */
export function createBarlowTwinsTask(options: BarlowTwinsOptions = {}): PretextTask<Frame> {
  resolveViewPairOptions(options);
  if (options.lambda !== undefined && !(options.lambda > 0))
    throw new OptionError('lambda', options.lambda, 'a positive number');
  const { projectionHead: _, ...pairs } = viewPairTask('barlow-twins', options, options.projection);
  return {
    name: 'barlow-twins',
    family: 'contrastive',
    paper:
      'Zbontar, Jing, Misra, LeCun, Deny. Barlow Twins: Self-Supervised Learning via Redundancy Reduction. ICML 2021',
    ...pairs,
    build(encoder, rng) {
      const features = featureSizeOf(encoder);
      const [hidden, out] = options.projection ?? [2 * features, 2 * features];
      const head = mlpHead(
        'barlow_twins_head',
        features,
        [{ units: hidden, activation: 'relu', batchNorm: true }, { units: out }],
        rng,
      );
      return { head };
    },
    forward(encoder, { head }, inputs, training) {
      return tf.tidy(() => {
        const pairs = inputs[0]!;
        const [batch] = pairs.shape;
        // One pass per view, so that batch norm normalizes each view's batch apart, as the paper's does.
        const projections = [0, 1].map((v) => {
          const views = tf.reshape(tf.slice(pairs, [0, v], [batch!, 1]), [batch!, ...pairs.shape.slice(2)]);
          return head.apply(encoder.apply(views, { training }), { training }) as tf.Tensor2D;
        });
        return tf.stack(projections, 1);
      });
    },
    loss: (_labels, projections) =>
      barlowTwinsLoss(projections, options.lambda ?? barlowLambda(projections.shape[2]!, projections.shape[0]!)),
    /** Top-1: how often a view's nearest other view in the batch is its partner (chance 1 / (2B - 1)). */
    metric: (_labels, projections) =>
      tf.tidy(() => {
        const { logits, targets } = ntXentLogits(projections, 1);
        return contrastiveAccuracy(logits, targets);
      }),
    monitors: {
      /** The collapse signal: spread of the first views' projections (about 1/sqrt(D) healthy, 0 collapsed). */
      embeddingStd: (projections) =>
        tf.tidy(() =>
          embeddingStd(tf.reshape(tf.slice(projections, [0, 0, 0], [-1, 1, -1]), [projections.shape[0]!, -1])),
        ),
    },
  };
}

/** Barlow Twins with the defaults (`--tasks barlow-twins`). */
export const barlowTwins = createBarlowTwinsTask();
