import * as tf from '@tensorflow/tfjs';
import type { OperatorFunction } from 'rxjs';
import { flushingOperator } from '../../core/flushingOperator.ts';
import { OptionError } from '../../core/errors.ts';
import type { Rng } from '../../core/rng.ts';
import { mlpHead } from '../../models/heads.ts';
import {
  augment,
  colorJitter,
  gaussianBlur,
  horizontalFlip,
  randomGrayscale,
  randomResizedCrop,
  type Recipe,
} from '../../pipeline/augment.ts';
import type { Frame } from '../../pipeline/frame.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { contrastiveAccuracy, embeddingStd, infoNceFromLogits, l2Normalize } from '../losses/infoNce.ts';
import { featureSizeOf, type PretextTask, type SamplerContext } from '../task.ts';

/** How the two views of a frame are made (SimCLR's augmentation; MoCo v2 uses the same). */
export interface ViewPairOptions {
  /** Area range of the random resized crop, as a fraction of the image. Default [0.3, 1] (see `createSimclrTask`). */
  cropScale?: readonly [number, number];
  /** Colour jitter strength s (brightness, contrast, saturation 0.8 s). Default 0.5, SimCLR's CIFAR setting. */
  strength?: number;
  /** Gaussian blur (p 0.5): default on for frames of 64 pixels or more a side, as the paper blurs ImageNet, not CIFAR. */
  blur?: boolean;
  /** Frames augmented together in one batch of tensor ops (the same draws whatever the group). Default 32. */
  group?: number;
}

/** Options of {@link createSimclrTask}. */
export interface SimclrOptions extends ViewPairOptions {
  /** Softmax temperature of NT-Xent. Default 0.2 (the paper sweeps 0.1 to 1; 0.2 to 0.5 suits small batches). */
  temperature?: number;
  /** Units of the projection head's hidden layer and output. Default: the encoder's feature size, then 32. */
  projection?: readonly [number, number];
}

type Resolved = Required<Omit<ViewPairOptions, 'blur'>> & Pick<ViewPairOptions, 'blur'>;

/** The view options with their defaults, checked. */
export function resolveViewPairOptions(options: ViewPairOptions): Resolved {
  const resolved = {
    cropScale: options.cropScale ?? ([0.3, 1] as const),
    strength: options.strength ?? 0.5,
    group: options.group ?? 32,
    blur: options.blur,
  };
  if (!Number.isInteger(resolved.group) || resolved.group < 1)
    throw new OptionError('group', resolved.group, 'a positive integer');
  return resolved;
}

/**
 * SimCLR's augmentation for a frame of `size` pixels a side: random resized crop (area `cropScale`, back to the
 * frame's size), horizontal flip, colour jitter (p 0.8), grayscale (p 0.2; a no-op on gray frames), and the blur when
 * asked for.
 */
export function simclrViewRecipe(options: ViewPairOptions, size: number): Recipe {
  const jitter = 0.8 * (options.strength ?? 0.5);
  return [
    randomResizedCrop({ scale: options.cropScale ?? [0.3, 1] }),
    horizontalFlip(0.5),
    colorJitter({ p: 0.8, brightness: jitter, contrast: jitter, saturation: jitter }),
    randomGrayscale(0.2),
    ...((options.blur ?? size >= 64) ? [gaussianBlur({ p: 0.5 })] : []),
  ];
}

const NO_LABEL = new Float32Array(1);

/**
 * Frames to SimCLR samples: two augmented views of each frame, input `[2, H, W, C]` floats in [0, 1]. Frames are
 * augmented in groups of `group` (one batch of tensor ops; the first views of the group, then the second views,
 * drawing from `rng` in frame order). The label is unused: a view's positive is the other view of its sample.
 */
export function sampleViewPairs(options: Resolved, rng: Rng): OperatorFunction<Frame, Sample> {
  return flushingOperator<Frame, Sample>((emit) => {
    let held: Frame[] = [];
    const flush = (): void => {
      if (held.length === 0) return;
      const { height, width, channels } = held[0]!;
      const size = height * width * channels;
      const pixels = new Float32Array(held.length * size);
      held.forEach((frame, i) => {
        if (frame.data.length !== size)
          throw new OptionError('frames', `${frame.width}x${frame.height}`, `frames of one size (${width}x${height})`);
        for (let k = 0; k < size; k++) pixels[i * size + k] = frame.data[k]! / 255;
      });
      const recipe = simclrViewRecipe(options, Math.min(height, width));
      const views = tf.tidy(() => {
        const batch = tf.tensor4d(pixels, [held.length, height, width, channels]);
        return tf.stack([augment(batch, recipe, rng), augment(batch, recipe, rng)], 1);
      });
      const values = views.dataSync() as Float32Array;
      views.dispose();
      held.forEach((frame, i) =>
        emit({ inputs: [values.slice(2 * i * size, 2 * (i + 1) * size)], label: NO_LABEL, source: frame.source }),
      );
      held = [];
    };
    return {
      next: (frame) => {
        held.push(frame);
        if (held.length >= options.group) flush();
      },
      flush,
    };
  });
}

/**
 * What every task on two views of a frame shares: it reads single frames, checks their size in `configure`, samples
 * view pairs `[2, H, W, C]` with an unused label, and projects the encoder's features with an MLP head
 * (featureSize-featureSize-32 unless `projection` says otherwise). SimCLR and MoCo spread it into their task.
 */
export function viewPairTask(name: string, views: ViewPairOptions, projection?: readonly [number, number]) {
  return {
    reads: 'images' as const,
    configure<T>(this: T, setup: { itemShape: readonly number[] }): T {
      const [height, width] = setup.itemShape;
      if (!(height! >= 8 && width! >= 8))
        throw new OptionError('--width/--height', setup.itemShape, `frames of at least 8 x 8 pixels for ${name}`);
      return this;
    },
    sampler: (context: SamplerContext) => sampleViewPairs(resolveViewPairOptions(views), context.rng),
    inputShapes: (itemShape: readonly number[]) => [[2, ...itemShape]],
    labelShape: () => [1],
    /** The projection head on the encoder's features. */
    projectionHead: (encoder: tf.LayersModel, rng: Rng): tf.Sequential => {
      const features = featureSizeOf(encoder);
      const [hidden, out] = projection ?? [features, 32];
      return mlpHead(`${name}_head`, features, [{ units: hidden, activation: 'relu' }, { units: out }], rng);
    },
  };
}

/**
 * NT-Xent logits for projections `[batch, 2, d]`: the 2B views l2-normalized, cosine similarities over the
 * temperature, each view's similarity to itself masked out; the target of view i of sample s is the other view of s.
 */
export function ntXentLogits(
  projections: tf.Tensor,
  temperature: number,
): { logits: tf.Tensor2D; targets: tf.Tensor1D } {
  return tf.tidy(() => {
    const [batch, , d] = projections.shape as [number, number, number];
    // Rows 0..B-1 are the first views, B..2B-1 the second.
    const views = l2Normalize(tf.reshape(tf.transpose(projections, [1, 0, 2]), [2 * batch, d]));
    const similarity = tf.div(tf.matMul(views, views, false, true), temperature);
    const logits = tf.sub(similarity, tf.mul(tf.eye(2 * batch), 1e9)) as tf.Tensor2D;
    const targets = tf.tensor1d(
      Array.from({ length: 2 * batch }, (_, i) => (i + batch) % (2 * batch)),
      'int32',
    );
    return { logits, targets };
  });
}

/**
 * SimCLR (Chen, Kornblith, Norouzi, Hinton, ICML 2020, "A Simple Framework for Contrastive Learning of Visual
 * Representations"): two random augmentations of each image are a positive pair; the other 2(B - 1) views of the
 * batch are its negatives. The shared encoder embeds every view, a projection head (MLP) maps the features to the
 * space the loss sees, and NT-Xent (the softmax cross-entropy of cosine similarities over a temperature) pulls
 * each view towards its partner. The encoder's output, before the projection, is the representation.
 *
 * The paper: ResNet-50, batches of 256 to 8192 (LARS), the projection 2048-2048-128, temperature 0.1 to 0.5, the
 * augmentation random resized crop (area 0.08 to 1), flip, colour jitter (strength 1 on ImageNet, 0.5 on CIFAR),
 * grayscale, Gaussian blur (ImageNet only), hundreds of epochs.
 *
 * This: the same loss and views on the project's shared encoder, batches of `--batch` samples (2B views), Adam.
 * Differences, and why: the crop keeps 30 to 100% of the area by default (`cropScale`), because at 28 to 64 pixels
 * a crop of 8% is a few pixels (a PyTorch run of this encoder on Fashion-MNIST did best at 0.3 to 1, see issue 13);
 * the projection is featureSize-featureSize-32 to match the small encoder; blur is on for frames of 64 pixels or more;
 * Adam instead of LARS (LARS matters at batch sizes this CPU does not reach). Reads single frames (`reads:
 * 'images'`), so it runs on `--images` and on video frames.
 *
 * @example
 * const task = createSimclrTask({ temperature: 0.5 });
 */
export function createSimclrTask(options: SimclrOptions = {}): PretextTask<Frame> {
  resolveViewPairOptions(options);
  const temperature = options.temperature ?? 0.2;
  if (!(temperature > 0)) throw new OptionError('temperature', temperature, 'a positive number');
  const { projectionHead, ...pairs } = viewPairTask('simclr', options, options.projection);
  return {
    name: 'simclr',
    family: 'contrastive',
    paper:
      'Chen, Kornblith, Norouzi, Hinton. A Simple Framework for Contrastive Learning of Visual Representations. ICML 2020',
    ...pairs,
    build: (encoder, rng) => ({ head: projectionHead(encoder, rng) }),
    forward(encoder, { head }, inputs, training) {
      return tf.tidy(() => {
        const pairs = inputs[0]!;
        const [batch] = pairs.shape;
        const views = tf.reshape(pairs, [-1, ...pairs.shape.slice(2)]);
        const projections = head.apply(encoder.apply(views, { training }), { training }) as tf.Tensor;
        return tf.reshape(projections, [batch!, 2, -1]);
      });
    },
    loss: (_labels, projections) =>
      tf.tidy(() => {
        const { logits, targets } = ntXentLogits(projections, temperature);
        return infoNceFromLogits(logits, targets);
      }),
    /** Top-1: how often a view's nearest other view in the batch is its partner (chance 1 / (2B - 1)). */
    metric: (_labels, projections) =>
      tf.tidy(() => {
        const { logits, targets } = ntXentLogits(projections, temperature);
        return contrastiveAccuracy(logits, targets);
      }),
    monitors: {
      /** The collapse signal: spread of the first views' projections (about 1/sqrt(d) healthy, 0 collapsed). */
      embeddingStd: (projections) =>
        tf.tidy(() =>
          embeddingStd(tf.reshape(tf.slice(projections, [0, 0, 0], [-1, 1, -1]), [projections.shape[0]!, -1])),
        ),
    },
  };
}

/** SimCLR with the defaults (`--tasks simclr`). */
export const simclr = createSimclrTask();
