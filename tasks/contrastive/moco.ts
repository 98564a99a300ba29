import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../../core/errors.ts';
import type { Rng } from '../../core/rng.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { categoricalAccuracy, softmaxCrossEntropy } from '../losses/softmaxCrossEntropy.ts';
import { embeddingStd, l2Normalize } from '../losses/infoNce.ts';
import type { PretextTask, StepContext, TaskState } from '../task.ts';
import { MomentumModels } from './momentumModels.ts';
import { resolveViewPairOptions, viewPairTask, type ClipPairOptions, type ViewPairOptions } from './simclr.ts';

/** Options of {@link createMocoTask}. */
export interface MocoOptions extends ViewPairOptions {
  /** Softmax temperature. Default 0.2 (MoCo v2). */
  temperature?: number;
  /**
   * Keys kept as negatives. Default 1024 (the paper: 4096 for CIFAR's 50,000 images, 65536 on ImageNet). Keep it well
   * under the number of training images: a queue as long as the data holds earlier keys of the query's own image, as
   * negatives; 1024 is 7% of a 14,000-image set, as 4096 is 8% of CIFAR.
   */
  queueSize?: number;
  /** EMA momentum of the key encoder. Default 0.99 (the paper: 0.99 to 0.999; 0.999 on ImageNet's long runs). */
  momentum?: number;
  /** Units of the projection head's hidden layer and output. Default: the encoder's feature size, then 32. */
  projection?: readonly [number, number];
  /**
   * The query and key are two moments of one video (reads video frames in time order): the registry's
   * `moco-video`. Absent: two augmentations of one image.
   */
  clips?: ClipPairOptions;
  /** The task's name (its heads, state and metrics). Default `moco`, or `moco-video` with `clips`. */
  name?: string;
}

/**
 * What MoCo keeps outside the gradient: the key encoder and key projection (EMA copies of the query ones), the queue
 * of past keys `[K, d]` and its write position, all checkpointed (the key models' weights as `key0/<i>` and
 * `key1/<i>`, see `MomentumModels`). The keys of the step in flight wait in `pending` until `afterStep` enqueues them.
 */
class MocoState implements TaskState {
  readonly keys: MomentumModels;
  readonly queue: tf.Variable;
  readonly #position: tf.Variable;
  #pending: tf.Tensor2D | undefined;

  constructor(
    encoder: tf.LayersModel,
    head: tf.LayersModel,
    readonly momentum: number,
    queueSize: number,
    rng: Rng,
  ) {
    this.keys = new MomentumModels([encoder, head], 'key');
    const d = head.outputs[0]!.shape[1] as number;
    // As MoCo starts: random unit vectors, so the first steps have negatives.
    const start = tf.tidy(() =>
      l2Normalize(
        tf.tensor2d(
          Float32Array.from({ length: queueSize * d }, () => rng.normal()),
          [queueSize, d],
        ),
      ),
    );
    this.queue = tf.variable(start, false);
    start.dispose();
    this.#position = tf.variable(tf.scalar(0, 'int32'), false);
  }

  /** The keys of the step in flight (for the collapse monitor). */
  get pendingKeys(): tf.Tensor2D | undefined {
    return this.#pending;
  }

  /** Keeps the step's keys until `afterStep` (a later forward pass replaces them). */
  hold(keys: tf.Tensor2D): void {
    this.#pending?.dispose();
    this.#pending = tf.keep(keys.clone());
  }

  tensors(): tf.NamedTensorMap {
    return { queue: this.queue, position: this.#position, ...this.keys.tensors() };
  }

  restore(saved: tf.NamedTensorMap): void {
    this.queue.assign(saved.queue!);
    this.#position.assign(saved.position! as tf.Scalar);
    this.keys.restore(saved);
  }

  /**
   * The key encoder and projection move towards the query ones (θk = m θk + (1 - m) θq, batch-norm statistics
   * included, since the key encoder runs in inference mode), then the step's keys replace the oldest in the queue.
   */
  afterStep(_encoder: tf.LayersModel, context?: StepContext): void {
    this.keys.update(1 - (1 - this.momentum) * (context?.momentumFactor ?? 1));
    const keys = this.#pending;
    if (!keys) return;
    this.#pending = undefined;
    tf.tidy(() => {
      const [size] = this.queue.shape as [number, number];
      const batch = Math.min(keys.shape[0], size);
      const at = this.#position.dataSync()[0]!;
      // Rows at, at + 1, ... (wrapping) take the keys.
      const rows = Array.from({ length: batch }, (_, i) => (at + i) % size);
      const slot = new Int32Array(size).fill(-1);
      rows.forEach((row, i) => (slot[row] = i));
      const keep = tf
        .tensor1d(
          Array.from(slot, (s) => (s < 0 ? 1 : 0)),
          'float32',
        )
        .reshape([size, 1]);
      const source = tf.tensor1d(
        Array.from(slot, (s) => Math.max(s, 0)),
        'int32',
      );
      const incoming = tf.gather(keys.slice([0, 0], [batch, -1]), source);
      this.queue.assign(tf.add(tf.mul(this.queue, keep), tf.mul(incoming, tf.sub(1, keep))));
      this.#position.assign(tf.scalar((at + batch) % size, 'int32'));
    });
    keys.dispose();
  }

  dispose(): void {
    this.#pending?.dispose();
    tf.dispose([this.queue, this.#position]);
    this.keys.dispose();
  }
}

/**
 * MoCo v2 (He, Fan, Wu, Xie, Girshick, CVPR 2020, "Momentum Contrast for Unsupervised Visual Representation
 * Learning"; v2: Chen, Fan, Girshick, He 2020, "Improved Baselines with Momentum Contrastive Learning"): a query
 * view goes through the encoder and an MLP projection; the key view of the same image through a momentum copy of
 * both (an EMA of their weights, no gradient); the loss is InfoNCE of the query against its key and the K keys
 * of earlier batches kept in a queue, which gives many negatives at any batch size. The encoder's output is the
 * representation.
 *
 * The paper (v2): ResNet-50, an MLP projection 2048-2048-128, temperature 0.2, K = 65536, momentum 0.999, SGD with
 * a cosine schedule, SimCLR's augmentation with blur, shuffled batch norm across GPUs for the key encoder.
 *
 * This: the same query/key/queue scheme on the project's shared encoder; the views are SimCLR's (`simclr`'s
 * options, crop area 0.3 to 1 by default); queue 1024 (for the smaller datasets of CPU runs), momentum 0.99, temperature 0.2, a featureSize-featureSize-32
 * projection. Differences, and why: the key encoder runs in inference mode, its batch-norm statistics an EMA of the
 * query encoder's like its weights, where MoCo runs it on batch statistics shuffled across GPUs; on one device there
 * is nothing to shuffle across, and batch statistics of the keys' own batch let the loss find a key by its batch
 * (a shortcut MoCo's shuffle exists to block: with it, a test run here learned nothing that held out, 0.156 against
 * random init 0.195). Adam instead of SGD; momentum 0.99 suits runs of thousands of steps (0.999 moves the keys
 * too slowly in short runs). The queue, its position and the key models are checkpointed, so `--resume` continues
 * exactly. With `clips` (`moco-video`) the query and key are two moments of one video at most `clips.maxGap`
 * seconds apart, each augmented (temporal augmentation, as `simclr-video`).
 *
 * @example
 * const task = createMocoTask({ queueSize: 1024, momentum: 0.99 });
 */
export function createMocoTask(options: MocoOptions = {}): PretextTask<Frame> {
  resolveViewPairOptions(options);
  const temperature = options.temperature ?? 0.2;
  const queueSize = options.queueSize ?? 1024;
  const momentum = options.momentum ?? 0.99;
  if (!(temperature > 0)) throw new OptionError('temperature', temperature, 'a positive number');
  if (!Number.isInteger(queueSize) || queueSize < 1)
    throw new OptionError('queueSize', queueSize, 'a positive integer');
  if (!(momentum >= 0 && momentum < 1)) throw new OptionError('momentum', momentum, 'a number in [0, 1)');
  const name = options.name ?? (options.clips ? 'moco-video' : 'moco');
  const { projectionHead, ...pairs } = viewPairTask(name, options, options.projection, options.clips);
  return {
    name,
    family: 'contrastive',
    paper:
      'He, Fan, Wu, Xie, Girshick. Momentum Contrast for Unsupervised Visual Representation Learning. CVPR 2020 (v2: Chen, Fan, Girshick, He 2020)',
    ...pairs,
    build(encoder, rng) {
      const head = projectionHead(encoder, rng);
      return { head, state: new MocoState(encoder, head, momentum, queueSize, rng) };
    },
    /** Logits `[batch, 1 + K]`: the query against its key (column 0), then against every queued key. */
    forward(encoder, { head, state }, inputs, training) {
      const moco = state as MocoState;
      return tf.tidy(() => {
        const pairs = inputs[0]!;
        const [batch] = pairs.shape;
        const item = pairs.shape.slice(2);
        const queryViews = tf.reshape(tf.slice(pairs, [0, 0], [batch!, 1]), [batch!, ...item]);
        const keyViews = tf.reshape(tf.slice(pairs, [0, 1], [batch!, 1]), [batch!, ...item]);
        const queries = l2Normalize(head.apply(encoder.apply(queryViews, { training }), { training }) as tf.Tensor2D);
        const [keyEncoder, keyHead] = moco.keys.copies as [tf.LayersModel, tf.LayersModel];
        const keys = l2Normalize(keyHead.apply(keyEncoder.apply(keyViews)) as tf.Tensor2D);
        if (training) moco.hold(keys);
        const positive = tf.sum(tf.mul(queries, keys), 1, true);
        const negatives = tf.matMul(queries, moco.queue, false, true);
        return tf.div(tf.concat([positive, negatives], 1), temperature);
      });
    },
    /** Cross-entropy with the key (column 0) as the target. */
    loss: (_labels, logits) =>
      tf.tidy(() => softmaxCrossEntropy(tf.oneHot(tf.zeros([logits.shape[0]!], 'int32'), logits.shape[1]!), logits)),
    /**
     * The collapse signal of the step's keys (the key encoder's l2-normalized projections): about 1/sqrt(d) when
     * healthy, 0 when every image maps to one point. The logits alone cannot show it.
     */
    monitors: {
      embeddingStd: (logits, { state }) => {
        const keys = (state as MocoState).pendingKeys;
        return keys ? embeddingStd(keys) : tf.scalar(Number.NaN);
      },
    },
    /** Top-1: how often the query's own key beats every queued key (chance 1 / (1 + K)). */
    metric: (_labels, logits) =>
      tf.tidy(() => categoricalAccuracy(tf.oneHot(tf.zeros([logits.shape[0]!], 'int32'), logits.shape[1]!), logits)),
  };
}

/** MoCo v2 with the defaults (`--tasks moco`). */
export const moco = createMocoTask();

/** MoCo v2 on video, query and key two frames of one video at most 1 s apart (`--tasks moco-video`). */
export const mocoVideo = createMocoTask({ clips: {} });
