import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../../core/errors.ts';
import { mlpHead } from '../../models/heads.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { contrastiveAccuracy, embeddingStd, l2Normalize } from '../losses/infoNce.ts';
import { featureSizeOf, type PretextTask, type StepContext, type TaskState } from '../task.ts';
import { MomentumModels } from './momentumModels.ts';
import { ntXentLogits, resolveViewPairOptions, viewPairTask, type ViewPairOptions } from './simclr.ts';

/** Options of {@link createByolTask}. */
export interface ByolOptions extends ViewPairOptions {
  /** EMA momentum of the target network. Default 0.99 (the paper: 0.996, raised to 1 on a cosine schedule). */
  momentum?: number;
  /** Units of the projector's (and the predictor's) hidden layer and output. Default: twice the encoder's feature size, then 32. */
  projection?: readonly [number, number];
  /**
   * The target network normalizes with its batch's statistics (batch norm in training mode), as the paper's does.
   * Default true; false runs it in inference mode (its moving averages, as MoCo's key encoder here).
   */
  targetBatchStatistics?: boolean;
}

/** The target network (EMA of encoder and projector), checkpointed as `target0/<i>` and `target1/<i>`. */
class ByolState implements TaskState {
  readonly target: MomentumModels;

  constructor(
    encoder: tf.LayersModel,
    projector: tf.LayersModel,
    readonly momentum: number,
  ) {
    this.target = new MomentumModels([encoder, projector], 'target');
  }

  tensors(): tf.NamedTensorMap {
    return this.target.tensors();
  }

  restore(saved: tf.NamedTensorMap): void {
    this.target.restore(saved);
  }

  /** The target moves towards the online encoder and projector: θ' = m θ' + (1 - m) θ. */
  /** The target moves towards the online network; under `--momentum-schedule cosine` its momentum rises to 1. */
  afterStep(_encoder: tf.LayersModel, context?: StepContext): void {
    this.target.update(1 - (1 - this.momentum) * (context?.momentumFactor ?? 1));
  }

  dispose(): void {
    this.target.dispose();
  }
}

/**
 * Rows of the predictions `[batch, 6, d]`: the online predictions of views 1 and 2, the target projections of views
 * 1 and 2, the online projections of views 1 and 2 (read by the metric and the collapse signal).
 */
const [P1, P2, Z1, Z2, ONLINE] = [0, 1, 2, 3, 4];

const row = (predictions: tf.Tensor, k: number): tf.Tensor2D =>
  tf.reshape(tf.slice(predictions, [0, k, 0], [-1, 1, -1]), [predictions.shape[0]!, -1]) as tf.Tensor2D;

/** `[2 * batch]`: cos(p1, z2') and cos(p2, z1'). */
function crossCosines(predictions: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const [p1, p2, z1, z2] = [P1, P2, Z1, Z2].map((k) => l2Normalize(row(predictions, k)));
    return tf.concat([tf.sum(tf.mul(p1!, z2!), 1), tf.sum(tf.mul(p2!, z1!), 1)]) as tf.Tensor1D;
  });
}

/**
 * BYOL (Grill, Strub, Altché, Tallec, Richemond, Buchatskaya, Doersch, Pires, Guo, Azar, Piot, Kavukcuoglu, Munos,
 * Valko, NeurIPS 2020, "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning"): no negatives. An
 * online network (encoder, projector, predictor) predicts, from one view, the projection a target network gives
 * the other view; the target is an EMA of the online encoder and projector and gets no gradient. The loss is the
 * normalized mean squared error 2 - 2 cos(p, z'), symmetrized over the two views. Nothing in the loss forbids
 * mapping every image to one point; the predictor and the slow target keep it from happening in practice, so the
 * collapse signal `embeddingStd` (the spread of the l2-normalized online projections, about 1/sqrt(d) healthy, 0
 * collapsed) is logged every step in `metrics.jsonl`.
 *
 * The paper: ResNet-50, projector and predictor MLPs 4096-256 with batch norm after the hidden layer, the target
 * network in training mode (its batch's statistics), target momentum 0.996 raised to 1 on a cosine schedule, LARS,
 * batches of 4096, SimCLR's augmentation (with asymmetric blur and solarization), 300 to 1000 epochs.
 *
 * This: the same online/target/predictor scheme and loss on the shared encoder with SimCLR's views (`simclr`'s
 * options), projector featureSize-2·featureSize (batch norm, ReLU)-32 and predictor 32-2·featureSize (batch norm,
 * ReLU)-32, the target on its batch's statistics, one pass per view, momentum 0.99 (raised to 1 on the paper's
 * cosine schedule with `--momentum-schedule cosine`), Adam. Differences, and why: a base momentum of 0.99 (0.99
 * moves the target enough in runs of hundreds of steps, 0.996 barely does); no solarization (the project's augmentation has none); small MLPs for the 64-d
 * encoder; Adam at the batch sizes a CPU reaches. The pretext metric is simclr's partner retrieval on the online
 * projections (how often a view's nearest other view in the batch is its partner): BYOL's own figure, the cosine
 * of prediction and target, is 1 at collapse too (it is logged as the monitor `targetCosine`).
 *
 * How well it learns, as measured: slower than the contrastive tasks. On the learning test simclr, moco and
 * barlow-twins pass in 400 steps (held-out partner retrieval on synthetic scenes above random init + 0.1), BYOL needs
 * 800: 0.305 against 0.195 (0.242 after 400; partners from other images 0.227), a margin of 0.11 for a bar of 0.1.
 * What a previous attempt got wrong, and is fixed here: its MLPs had no batch norm (the collapse it saw), and its
 * target ran in inference mode, normalizing with moving averages that lag the online network's at the start (0.164
 * after 400 steps, against 0.242 on batch statistics). It does not collapse (embeddingStd 0.14-0.15 throughout,
 * 1/sqrt(32) = 0.18). The learning test runs the fixed momentum; the cosine schedule, LARS and a higher predictor
 * learning rate (the paper's and DirectPred's remedies for slow starts) are options not measured here.
 *
 * @example
 * const task = createByolTask({ momentum: 0.996 });
 */
export function createByolTask(options: ByolOptions = {}): PretextTask<Frame> {
  resolveViewPairOptions(options);
  const momentum = options.momentum ?? 0.99;
  const targetTraining = options.targetBatchStatistics ?? true;
  if (!(momentum >= 0 && momentum < 1)) throw new OptionError('momentum', momentum, 'a number in [0, 1)');
  const { projectionHead: _, ...pairs } = viewPairTask('byol', options, options.projection);
  return {
    name: 'byol',
    family: 'contrastive',
    paper:
      'Grill, Strub, Altché, Tallec, Richemond, Buchatskaya, Doersch, Pires, Guo, Azar, Piot, Kavukcuoglu, Munos, Valko. Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning. NeurIPS 2020',
    ...pairs,
    build(encoder, rng) {
      const features = featureSizeOf(encoder);
      const [hidden, out] = options.projection ?? [2 * features, 32];
      const mlp = (name: string, inputs: number) =>
        mlpHead(name, inputs, [{ units: hidden, activation: 'relu', batchNorm: true }, { units: out }], rng);
      const projector = mlp('byol_projector', features);
      const predictor = mlp('byol_predictor', out);
      return { head: projector, extra: { predictor }, state: new ByolState(encoder, projector, momentum) };
    },
    forward(encoder, { head, extra, state }, inputs, training) {
      const [targetEncoder, targetProjector] = (state as ByolState).target.copies as [tf.LayersModel, tf.LayersModel];
      return tf.tidy(() => {
        const pairs = inputs[0]!;
        const [batch] = pairs.shape;
        const online: tf.Tensor2D[] = [];
        const predictions: tf.Tensor2D[] = [];
        const targets: tf.Tensor2D[] = [];
        // One pass per view, so that batch norm normalizes each view's batch apart, as the paper's does.
        for (const v of [0, 1]) {
          const views = tf.reshape(tf.slice(pairs, [0, v], [batch!, 1]), [batch!, ...pairs.shape.slice(2)]);
          const projection = head.apply(encoder.apply(views, { training }), { training }) as tf.Tensor2D;
          online.push(projection);
          predictions.push(extra!.predictor!.apply(projection, { training }) as tf.Tensor2D);
          // The target's weights are not among the trained variables: it enters the loss as a constant.
          const target = { training: training && targetTraining };
          targets.push(targetProjector.apply(targetEncoder.apply(views, target), target) as tf.Tensor2D);
        }
        return tf.stack([...predictions, ...targets, ...online], 1);
      });
    },
    /** 2 - 2 cos(prediction of view 1, target of view 2), plus the same with the views swapped, averaged. */
    loss: (_labels, predictions) =>
      tf.tidy(() => tf.mean(tf.sub(2, tf.mul(2, crossCosines(predictions)))) as tf.Scalar),
    /** Top-1 partner retrieval on the online projections (chance 1 / (2B - 1)); see the TSDoc above. */
    metric: (_labels, predictions) =>
      tf.tidy(() => {
        const { logits, targets } = ntXentLogits(tf.slice(predictions, [0, ONLINE, 0], [-1, 2, -1]), 1);
        return contrastiveAccuracy(logits, targets);
      }),
    monitors: {
      /** The spread of the online projections of view 1 (about 1/sqrt(d) healthy, 0 collapsed). */
      embeddingStd: (predictions) => tf.tidy(() => embeddingStd(row(predictions, ONLINE))),
      /** Mean cosine of each view's prediction and the other view's target (1 is perfect, and collapse). */
      targetCosine: (predictions) => tf.tidy(() => tf.mean(crossCosines(predictions)) as tf.Scalar),
    },
  };
}

/** BYOL with the defaults (`--tasks byol`). */
export const byol = createByolTask();
