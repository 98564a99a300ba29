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
  /**
   * Pair two moments of one video instead of two augmentations of one frame (reads video frames in time order):
   * the registry's `simclr-video`. Absent: SimCLR on single images.
   */
  clips?: ClipPairOptions;
  /** The task's name (its heads and metrics). Default `simclr`, or `simclr-video` with `clips`. */
  name?: string;
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

/** What {@link augmentInGroups} makes of one held item: its frames (one per view) and how to turn views into a sample. */
export interface ViewSource<T> {
  /** The frame each view of `item` is augmented from: the same frame twice (SimCLR), two moments (video pairs). */
  frames(item: T): readonly Frame[];
  /** The sample of `item` from its augmented views `[views, H, W, C]` floats in [0, 1]. */
  sample(item: T, views: Float32Array): Sample;
}

/**
 * Items to samples, augmented in groups of `group` (one batch of tensor ops a view): view k of every item of the
 * group is augmented by `recipe` in one call, the views in order, drawing from `rng` in item order; so the same
 * seed and items give the same samples whatever arrives later.
 *
 * @throws OptionError (in the stream) for frames of another size than the group's first.
 */
export function augmentInGroups<T>(
  group: number,
  source: ViewSource<T>,
  recipe: (size: number) => Recipe,
  rng: Rng,
): OperatorFunction<T, Sample> {
  return flushingOperator<T, Sample>((emit) => {
    let held: T[] = [];
    const flush = (): void => {
      if (held.length === 0) return;
      const frames = held.map((item) => source.frames(item));
      const { height, width, channels } = frames[0]![0]!;
      const size = height * width * channels;
      const count = frames[0]!.length;
      const pixels = Array.from({ length: count }, () => new Float32Array(held.length * size));
      frames.forEach((views, i) =>
        views.forEach((frame, k) => {
          if (frame.data.length !== size)
            throw new OptionError(
              'frames',
              `${frame.width}x${frame.height}`,
              `frames of one size (${width}x${height})`,
            );
          const out = pixels[k]!;
          for (let p = 0; p < size; p++) out[i * size + p] = frame.data[p]! / 255;
        }),
      );
      const steps = recipe(Math.min(height, width));
      const views = tf.tidy(() =>
        tf.stack(
          pixels.map((p) => augment(tf.tensor4d(p, [held.length, height, width, channels]), steps, rng)),
          1,
        ),
      );
      const values = views.dataSync() as Float32Array;
      views.dispose();
      held.forEach((item, i) => emit(source.sample(item, values.slice(count * i * size, count * (i + 1) * size))));
      held = [];
    };
    return {
      next: (item) => {
        held.push(item);
        if (held.length >= group) flush();
      },
      flush,
    };
  });
}

/**
 * Frames to SimCLR samples: two augmented views of each frame, input `[2, H, W, C]` floats in [0, 1]. Frames are
 * augmented in groups of `group` (see {@link augmentInGroups}: the first views of the group, then the second views).
 * The label is unused: a view's positive is the other view of its sample.
 */
export function sampleViewPairs(options: Resolved, rng: Rng): OperatorFunction<Frame, Sample> {
  return augmentInGroups<Frame>(
    options.group,
    {
      frames: (frame) => [frame, frame],
      sample: (frame, views) => ({ inputs: [views], label: NO_LABEL, source: frame.source }),
    },
    (size) => simclrViewRecipe(options, size),
    rng,
  );
}

/** How two moments of a video are paired (the temporal positives of `simclr-video` and `moco-video`). */
export interface ClipPairOptions {
  /**
   * Largest time between the two frames of a pair, in seconds: the partner of each frame is drawn uniformly among
   * the frames of the same video at most this long before it. Default 1 s (CVRL, Qian et al. 2021, draws its two
   * clips up to the whole video apart, favouring short gaps; at the short videos of this project 1 s keeps the
   * pair on one scene).
   */
  maxGap?: number;
}

/**
 * Frames of videos (in time order) to pairs of two moments of one video at most `maxGap` seconds apart: each
 * frame is paired with a frame drawn uniformly from those of the same source before it within the gap (a
 * video's first frame, with none before it, gives no pair). The memory is the frames of the last `maxGap`
 * seconds of the current video, forgotten at a new source or when time runs backwards.
 */
export function pairMoments(maxGap: number, rng: Rng): OperatorFunction<Frame, [Frame, Frame]> {
  return flushingOperator<Frame, [Frame, Frame]>((emit) => {
    let recent: Frame[] = [];
    return {
      next: (frame) => {
        const last = recent.at(-1);
        if (!last || last.source !== frame.source || !(last.timestamp < frame.timestamp)) recent = [];
        recent = recent.filter((f) => frame.timestamp - f.timestamp <= maxGap + 1e-6);
        if (recent.length > 0) emit([recent[rng.int(recent.length)]!, frame]);
        recent.push(frame);
      },
      flush: () => (recent = []),
    };
  });
}

/**
 * Video frames to samples of two augmented moments of one video (`[2, H, W, C]`, see {@link pairMoments}): the
 * temporal augmentation of video contrastive learning, on top of SimCLR's.
 */
export function sampleClipPairs(
  options: Resolved,
  clips: Required<ClipPairOptions>,
  rng: Rng,
): OperatorFunction<Frame, Sample> {
  const pairs = rng.fork();
  return (frames) =>
    frames.pipe(
      pairMoments(clips.maxGap, pairs),
      augmentInGroups<[Frame, Frame]>(
        options.group,
        {
          frames: (pair) => pair,
          sample: ([, frame], views) => ({ inputs: [views], label: NO_LABEL, source: frame.source }),
        },
        (size) => simclrViewRecipe(options, size),
        rng,
      ),
    );
}

/** The clip-pair options with their defaults, checked. */
export function resolveClipPairOptions(options: ClipPairOptions): Required<ClipPairOptions> {
  const maxGap = options.maxGap ?? 1;
  if (!(maxGap > 0 && Number.isFinite(maxGap)))
    throw new OptionError('maxGap', maxGap, 'a positive number of seconds, e.g. 1');
  return { maxGap };
}

/**
 * What every task on two views of a frame shares: it reads single frames, checks their size in `configure`, samples
 * view pairs `[2, H, W, C]` with an unused label, and projects the encoder's features with an MLP head
 * (featureSize-featureSize-32 unless `projection` says otherwise). SimCLR and MoCo spread it into their task. With
 * `clips`, it reads video frames in time order instead (`reads: 'frames'`) and pairs two moments of one video
 * ({@link sampleClipPairs}): the `-video` variants.
 */
export function viewPairTask(
  name: string,
  views: ViewPairOptions,
  projection?: readonly [number, number],
  clips?: ClipPairOptions,
) {
  const moments = clips && resolveClipPairOptions(clips);
  return {
    reads: moments ? ('frames' as const) : ('images' as const),
    configure<T>(this: T, setup: { itemShape: readonly number[] }): T {
      const [height, width] = setup.itemShape;
      if (!(height! >= 8 && width! >= 8))
        throw new OptionError('--width/--height', setup.itemShape, `frames of at least 8 x 8 pixels for ${name}`);
      return this;
    },
    sampler: (context: SamplerContext) =>
      moments
        ? sampleClipPairs(resolveViewPairOptions(views), moments, context.rng)
        : sampleViewPairs(resolveViewPairOptions(views), context.rng),
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
 * 'images'`), so it runs on `--images` and on video frames. With `clips` (`simclr-video`) it reads video frames in
 * time order and its positive pair is two moments of one video at most `clips.maxGap` seconds apart, each
 * augmented as above (temporal augmentation; see {@link sampleClipPairs}).
 *
 * @example
 * const task = createSimclrTask({ temperature: 0.5 });
 */
export function createSimclrTask(options: SimclrOptions = {}): PretextTask<Frame> {
  resolveViewPairOptions(options);
  const temperature = options.temperature ?? 0.2;
  if (!(temperature > 0)) throw new OptionError('temperature', temperature, 'a positive number');
  const name = options.name ?? (options.clips ? 'simclr-video' : 'simclr');
  const { projectionHead, ...pairs } = viewPairTask(name, options, options.projection, options.clips);
  return {
    name,
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

/**
 * SimCLR on video with temporal augmentation (`--tasks simclr-video`): the positive pair is two frames of one video
 * at most 1 s apart, each then augmented as SimCLR's views (CVRL, Qian et al., CVPR 2021, pairs two clips of one
 * video the same way; here clips are single frames, since the shared encoder reads frames). Reads video frames in
 * time order, so it does not run on `--images`.
 */
export const simclrVideo = createSimclrTask({ clips: {} });
