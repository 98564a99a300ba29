import * as tf from '@tensorflow/tfjs';
import { type OperatorFunction, pipe, tap } from 'rxjs';
import { DataFormatError, OptionError } from '../../core/errors.ts';
import type { Rng } from '../../core/rng.ts';
import { buildFrameEncoder } from '../../models/frameEncoder.ts';
import { mlpHead } from '../../models/heads.ts';
import { LabChannels, labPart } from '../../models/labChannels.ts';
import { horizontalFlip, randomResizedCrop, type Recipe } from '../../pipeline/augment.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { isStreamInput } from '../../pipeline/probeVideo.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { l2Normalize } from '../losses/infoNce.ts';
import { categoricalAccuracy, softmaxCrossEntropy } from '../losses/softmaxCrossEntropy.ts';
import { featureSizeOf, type PretextTask, type SamplerContext, type TaskParts } from '../task.ts';
import { bankEmbeddingStd, MemoryBank, slotOf } from './memoryBank.ts';
import { augmentInGroups } from './simclr.ts';

/** Options of {@link createCmcTask} and {@link createCmcViewsTask}. */
export interface CmcOptions {
  /** Softmax temperature. Default 0.07 (the paper's). */
  temperature?: number;
  /** Weight of a slot's old vector in its update. Default 0.5 (the paper's). */
  momentum?: number;
  /** Negatives drawn from each bank per step, shared by the batch. Default 4096 (the paper: 4096 to 16384). */
  negatives?: number;
  /** Size of each view's embedding. Default 128 (the paper's). */
  dim?: number;
  /** Slots of each bank: the image count on an image run (`TaskSetup.itemCount`), else this many (hashed). Default 16384. */
  bankSize?: number;
  /** Whether a frame's `index` is its place in an image set (set by `configure` from `itemCount`). */
  indexed?: boolean;
  /** Area range of the random resized crop. Default [0.3, 1] (as `simclr`, for frames of 28 to 64 pixels). */
  cropScale?: readonly [number, number];
  /** Frames augmented in one batch of tensor ops. Default 32. */
  group?: number;
  /** Cameras of a `cmc-views` moment, one encoder each (the first cameras of each moment). Default 2. */
  cameras?: number;
}

type Resolved = Required<Omit<CmcOptions, 'cameras'>> & { cameras: number };

function resolveCmcOptions(options: CmcOptions): Resolved {
  const resolved = {
    temperature: options.temperature ?? 0.07,
    momentum: options.momentum ?? 0.5,
    negatives: options.negatives ?? 4096,
    dim: options.dim ?? 128,
    bankSize: options.bankSize ?? 16384,
    indexed: options.indexed ?? false,
    cropScale: options.cropScale ?? ([0.3, 1] as const),
    group: options.group ?? 32,
    cameras: options.cameras ?? 2,
  };
  if (!(resolved.temperature > 0)) throw new OptionError('temperature', resolved.temperature, 'a positive number');
  for (const name of ['dim', 'group'] as const)
    if (!Number.isInteger(resolved[name]) || resolved[name] < 1)
      throw new OptionError(name, resolved[name], 'a positive integer');
  if (!Number.isInteger(resolved.bankSize) || resolved.bankSize < 2)
    throw new OptionError('bankSize', resolved.bankSize, 'an integer >= 2');
  if (!Number.isInteger(resolved.cameras) || resolved.cameras < 2)
    throw new OptionError('cameras', resolved.cameras, 'an integer >= 2 (CMC contrasts two views or more)');
  return resolved;
}

/** The augmentation of CMC's code: random resized crop and flip, no colour change (colour is one of the views). */
const cmcRecipe = (options: Resolved) => (): Recipe => [
  randomResizedCrop({ scale: options.cropScale }),
  horizontalFlip(0.5),
];

function refuseLiveInputs(task: string, inputs: readonly string[] | undefined): void {
  const live = inputs?.find(isStreamInput);
  if (live !== undefined)
    throw new OptionError(
      '--video',
      live,
      `files or --images: ${task} keeps one memory slot per item, and a live stream never shows a frame twice (record it to a file first)`,
    );
}

/** Frames (from the first `count`) whose three channels are equal everywhere: gray pictures stored as RGB. */
function refuseGrayPictures(count = 64): OperatorFunction<Frame, Frame> {
  let seen = 0;
  let coloured = false;
  return tap((frame: Frame) => {
    if (coloured || seen >= count) return;
    seen++;
    const d = frame.data;
    for (let p = 0; p < d.length && !coloured; p += 3) coloured = d[p] !== d[p + 1] || d[p] !== d[p + 2];
    if (!coloured && seen === count)
      throw new DataFormatError(
        frame.source,
        `cmc: the first ${count} frames are gray (R = G = B), so their ab view is empty and cmc is not applicable (cmc contrasts L with ab of colour pictures; use instance-disc, simclr or moco)`,
      );
  });
}

/**
 * Colour frames to CMC samples: one random crop and flip of the RGB frame `[H, W, 3]` (both views are cut from it
 * in the graph: L, and ab) and its bank slot `[1]`.
 */
export function sampleCmc(options: CmcOptions, rng: Rng): OperatorFunction<Frame, Sample> {
  const o = resolveCmcOptions(options);
  const label = new Float32Array(1);
  return pipe(
    refuseGrayPictures(),
    augmentInGroups<Frame>(
      o.group,
      {
        frames: (frame) => [frame],
        sample: (frame, view) => ({
          inputs: [view, Float32Array.of(slotOf(frame, o.bankSize, o.indexed))],
          label,
          source: frame.source,
        }),
      },
      cmcRecipe(o),
      rng,
    ),
  );
}

/**
 * Moments of synchronized cameras to CMC samples: the first `cameras` frames of the moment, each cropped and flipped
 * on its own, `[cameras, H, W, C]`, and the moment's slot `[1]` (camera 0's file and frame index, hashed).
 *
 * @throws OptionError (in the stream) for a moment of fewer cameras, naming `--views` and the fix.
 */
export function sampleCmcViews(options: CmcOptions, rng: Rng): OperatorFunction<readonly Frame[], Sample> {
  const o = resolveCmcOptions(options);
  const label = new Float32Array(1);
  return augmentInGroups<readonly Frame[]>(
    o.group,
    {
      frames: (moment) => {
        if (moment.length < o.cameras)
          throw new OptionError(
            '--views',
            `${moment.length} camera(s) of ${moment[0]?.source ?? 'a moment'}`,
            `groups of ${o.cameras} synchronized cameras or more for cmc-views (--views cam0.mp4,cam1.mp4; on plain --video use --tasks cmc, L against ab)`,
          );
        return moment.slice(0, o.cameras);
      },
      sample: (moment, views) => ({
        inputs: [views, Float32Array.of(slotOf(moment[0]!, o.bankSize, false))],
        label,
        source: moment[0]!.source,
      }),
    },
    cmcRecipe(o),
    rng,
  );
}

/**
 * A frame encoder of the shared encoder's architecture (conv widths, blocks, feature size, pooling and
 * normalization, read from its layers) on `channels` input channels, seeded by `seed`: the encoder of another view.
 */
export function encoderLike(encoder: tf.LayersModel, channels: number, seed: number, name: string): tf.LayersModel {
  const [height, width] = encoder.inputs[0]!.shape.slice(1) as [number, number];
  const convs = encoder.layers.filter((l) => /^conv\d+$/.test(l.name));
  const built = buildFrameEncoder({
    inputShape: [height, width, channels],
    featureSize: featureSizeOf(encoder),
    width: (convs[0]!.getConfig() as { filters: number }).filters,
    blocks: convs.length,
    seed,
    pooling: encoder.layers.some((l) => l.getClassName() === 'GlobalAveragePooling2D') ? 'average' : 'flatten',
    normalization: encoder.layers.some((l) => l.getClassName() === 'BatchNormalization') ? 'batch' : 'none',
  });
  return tf.model({ inputs: built.inputs, outputs: built.outputs, name });
}

/**
 * A view's projection: linear to `dim`, then batch normalization (the paper's is linear alone). A small encoder's
 * outputs at random init share one large common component (held-out L embeddings at cosine 0.92 to each other);
 * its drift moves every fresh feature away from memories written an epoch earlier, so each item's own slot (the
 * oldest memory) loses to recently written negatives: the loss climbed far above chance (35 at step 40, chance
 * 12.5), then the two views' embeddings pointed apart (cosine -0.6) and each collapsed (0.98 within a view).
 * Normalizing over the batch removes the common component, and the loss never restores it (a component shared by
 * every memory adds the same to every logit).
 */
function projection(name: string, features: number, dim: number, rng: Rng): tf.Sequential {
  return mlpHead(name, features, [{ units: dim, batchNorm: true }], rng);
}

/**
 * The full-graph CMC logits `[batch, V (V - 1), 1 + negatives]` of l2-normalized view embeddings `z[v]`: for
 * each ordered pair (i, j), i != j, view i's embedding against view j's bank (column 0 the item's own slot, or
 * view j's embedding of this step where the slot was never written).
 */
function pairLogits(
  bank: MemoryBank,
  z: readonly tf.Tensor2D[],
  slots: Int32Array,
  temperature: number,
  training: boolean,
): tf.Tensor {
  const pairs: tf.Tensor2D[] = [];
  z.forEach((zi, i) =>
    z.forEach((_, j) => {
      if (i !== j) pairs.push(bank.logits(j, zi, slots, temperature, training, z[j]));
    }),
  );
  return tf.stack(pairs, 1);
}

/** Cross-entropy of every pair's row with column 0 as the target, summed over pairs and averaged over the batch. */
function pairLoss(logits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const [batch, pairs, columns] = logits.shape as [number, number, number];
    const rows = tf.reshape(logits, [batch * pairs, columns]);
    return tf.mul(softmaxCrossEntropy(tf.oneHot(tf.zeros([batch * pairs], 'int32'), columns), rows), pairs);
  });
}

/** Top-1 over every pair's rows: how often the own slot beats every negative (chance 1 / (1 + negatives)). */
function pairAccuracy(logits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const [batch, pairs, columns] = logits.shape as [number, number, number];
    const rows = tf.reshape(logits, [batch * pairs, columns]);
    return categoricalAccuracy(tf.oneHot(tf.zeros([batch * pairs], 'int32'), columns), rows);
  });
}

const PAPER = 'Tian, Krishnan, Isola. Contrastive Multiview Coding. arXiv 2019 (ECCV 2020)';

/**
 * Contrastive Multiview Coding on colour pictures (Tian, Krishnan, Isola 2019, "Contrastive Multiview Coding"): an
 * image's L channel and its ab channels are two views of one scene; an encoder per view maps each to an
 * l2-normalized embedding, and each view's embedding is trained to pick the same image's slot in the other view's
 * memory bank (one bank per view, momentum 0.5) against sampled negatives, temperature 0.07; the loss is the sum of
 * both directions. The representation is both encoders' features concatenated.
 *
 * The paper: L and ab halves of AlexNet or ResNet (each half the width, together the size of one network), crop
 * and flip (no colour jitter: colour is a view), NCE with 4096 to 16384 noise samples per item, 240 epochs of
 * ImageNet (or STL-10), features of both halves concatenated for the linear probe.
 *
 * This: view L is the shared encoder, fed L / 100 replicated to its three channels (as `colorization`); view ab is
 * a second encoder of the same architecture on two channels (a / 110, b / 110), an `extra` part (`ab_encoder`);
 * each has a projection to 128, linear then batch norm (`head` for L, `ab_head`); the banks (`MemoryBank`, views
 * 2) and the generator of their negatives are checkpointed. Differences, and why: each encoder has the shared
 * encoder's full width rather than half (the shared encoder's size is the run's, and it is the L view's); the loss
 * is a softmax over the own slot and 4096 negatives drawn per step (among the slots written so far) and shared by
 * the batch, not NCE (see `instance-disc`); crops keep 30 to 100% of the area (small frames, as `simclr`). Two
 * differences keep the two views from collapsing at this scale (session 7's runs scored 0.078 held-out against
 * 0.016 at random init; with both, 0.258; see `cmc.test.ts`): the projection's batch norm (the paper's is linear;
 * see {@link projection}), and the positive of an item whose slot was never written, which is the other view's
 * feature of this step, held constant (the vector the slot's first write stores), not the slot's random starting
 * vector (the paper's): a random positive against real negatives taught each view to move away from the other's
 * features. On a one-pass stream of video frames (hashed slots, mostly first visits) the positive is thus the
 * other view of the same frame, and negatives come from the bank. What a run saves as `encoder` (and `evaluate`
 * reads) is the L encoder alone, which expects L replicated where evaluate feeds RGB frames; the paper's
 * concatenated representation, on RGB input, is `TaskParts.representation` (`cmc_representation`). Slots: one per
 * image on `--images`, hashed frames on `--video` (as `instance-disc`); live streams are refused.
 *
 * Not applicable to gray pictures: `configure` refuses `--gray` frames and the sampler refuses RGB frames whose
 * first 64 are all gray (R = G = B), whose ab view would be empty, rather than fake a second view.
 *
 * @example
 * const task = createCmcTask({ bankSize: 5000, indexed: true });
 */
export function createCmcTask(options: CmcOptions = {}): PretextTask<Frame> {
  const o = resolveCmcOptions(options);
  const negatives = Math.min(o.negatives, o.bankSize - 1);
  return {
    name: 'cmc',
    family: 'contrastive',
    paper: PAPER,
    reads: 'images',
    configure(setup) {
      const [height, width, channels] = setup.itemShape;
      if (channels !== 3)
        throw new OptionError(
          '--gray',
          setup.itemShape,
          'left out: cmc contrasts the L and ab channels of colour frames, and gray frames have no ab (cmc is not applicable to gray data; use instance-disc, simclr or moco)',
        );
      if (!(height! >= 8 && width! >= 8))
        throw new OptionError('--width/--height', setup.itemShape, 'frames of at least 8 x 8 pixels for cmc');
      if (setup.itemCount === undefined) return this;
      return createCmcTask({ ...options, bankSize: setup.itemCount, indexed: true });
    },
    sampler(context: SamplerContext) {
      refuseLiveInputs('cmc', context.inputs);
      return sampleCmc(o, context.rng);
    },
    inputShapes: (itemShape) => [[...itemShape], [1]],
    labelShape: () => [1],
    build(encoder, rng): TaskParts {
      const features = featureSizeOf(encoder);
      const abEncoder = encoderLike(encoder, 2, rng.int(2 ** 31), 'cmc_ab_encoder');
      const head = projection('cmc_l_head', features, o.dim, rng);
      const abHead = projection('cmc_ab_head', features, o.dim, rng);
      const state = new MemoryBank({
        size: o.bankSize,
        dim: o.dim,
        views: 2,
        momentum: o.momentum,
        negatives,
        seed: rng.int(2 ** 31),
      });
      const input = tf.input({ shape: encoder.inputs[0]!.shape.slice(1) as number[], name: 'cmc_rgb' });
      const l = encoder.apply(new LabChannels({ part: 'l3', name: 'cmc_l3' }).apply(input)) as tf.SymbolicTensor;
      const ab = abEncoder.apply(new LabChannels({ part: 'ab', name: 'cmc_ab' }).apply(input)) as tf.SymbolicTensor;
      const both = tf.layers.concatenate({ name: 'cmc_features' }).apply([l, ab]) as tf.SymbolicTensor;
      const representation = tf.model({ inputs: input, outputs: both, name: 'cmc_representation' });
      return { head, extra: { ab_encoder: abEncoder, ab_head: abHead }, state, representation };
    },
    /** Logits `[batch, 2, 1 + negatives]`: L against the ab bank, then ab against the L bank. */
    forward(encoder, { head, extra, state }, inputs, training) {
      const bank = state as MemoryBank;
      return tf.tidy(() => {
        const rgb = inputs[0]!;
        const zL = l2Normalize(
          head.apply(encoder.apply(labPart(rgb, 'l3'), { training }), { training }) as tf.Tensor2D,
        );
        const abFeatures = extra!.ab_encoder!.apply(labPart(rgb, 'ab'), { training }) as tf.Tensor;
        const zAb = l2Normalize(extra!.ab_head!.apply(abFeatures, { training }) as tf.Tensor2D);
        const slots = Int32Array.from(inputs[1]!.dataSync());
        if (training) bank.hold([zL, zAb], slots);
        return pairLogits(bank, [zL, zAb], slots, o.temperature, training);
      });
    },
    loss: (_labels, logits) => pairLoss(logits),
    metric: (_labels, logits) => pairAccuracy(logits),
    monitors: { embeddingStd: bankEmbeddingStd },
  };
}

/**
 * CMC on synchronized cameras (`--views`, `cmc-views`): the views are `cameras` cameras filming one moment (the
 * first of each `--views` group), one encoder each (camera 0 the shared encoder, camera k an `extra`
 * `camera<k>_encoder` of the same architecture), one bank each, and the full graph of pairs (each camera's
 * embedding against every other camera's bank; the paper's "full graph" for more than two views). Each camera's
 * frame is cropped and flipped on its own. Slots are the moments, hashed from camera 0's file and frame index.
 * The paper contrasts modalities (L, ab, depth, flow); cameras are views of the same modality, which is what TCN
 * (`tcn`) contrasts with a triplet loss. As `cmc`: projections linear then batch norm, and an unwritten slot's
 * positive is the other camera's feature of this step. Needs `--views`: one-camera moments (plain `--video`) are
 * refused in the stream with an `OptionError`.
 *
 * @example
 * const task = createCmcViewsTask({ cameras: 2 });
 */
export function createCmcViewsTask(options: CmcOptions = {}): PretextTask<readonly Frame[]> {
  const o = resolveCmcOptions(options);
  const negatives = Math.min(o.negatives, o.bankSize - 1);
  const cameras = Array.from({ length: o.cameras }, (_, k) => k);
  return {
    name: 'cmc-views',
    family: 'contrastive',
    paper: PAPER,
    reads: 'views',
    configure(setup) {
      const [height, width] = setup.itemShape;
      if (!(height! >= 8 && width! >= 8))
        throw new OptionError('--width/--height', setup.itemShape, 'frames of at least 8 x 8 pixels for cmc-views');
      return this;
    },
    sampler(context: SamplerContext) {
      refuseLiveInputs('cmc-views', context.inputs);
      return sampleCmcViews(o, context.rng);
    },
    inputShapes: (itemShape) => [[o.cameras, ...itemShape], [1]],
    labelShape: () => [1],
    build(encoder, rng): TaskParts {
      const channels = encoder.inputs[0]!.shape[3] as number;
      const features = featureSizeOf(encoder);
      const extra: Record<string, tf.LayersModel> = {};
      for (const k of cameras.slice(1))
        extra[`camera${k}_encoder`] = encoderLike(encoder, channels, rng.int(2 ** 31), `cmc_camera${k}_encoder`);
      for (const k of cameras.slice(1))
        extra[`camera${k}_head`] = projection(`cmc_camera${k}_head`, features, o.dim, rng);
      const head = projection('cmc_camera0_head', features, o.dim, rng);
      const state = new MemoryBank({
        size: o.bankSize,
        dim: o.dim,
        views: o.cameras,
        momentum: o.momentum,
        negatives,
        seed: rng.int(2 ** 31),
      });
      return { head, extra, state };
    },
    /** Logits `[batch, V (V - 1), 1 + negatives]`, the ordered pairs of cameras in order (0, 1), (0, 2) ... (1, 0) ... */
    forward(encoder, { head, extra, state }, inputs, training) {
      const bank = state as MemoryBank;
      return tf.tidy(() => {
        const moments = inputs[0]!;
        const [batch] = moments.shape;
        const item = moments.shape.slice(2);
        const z = cameras.map((k) => {
          const frames = tf.reshape(tf.slice(moments, [0, k], [batch!, 1]), [batch!, ...item]);
          const [net, proj] = k === 0 ? [encoder, head] : [extra![`camera${k}_encoder`]!, extra![`camera${k}_head`]!];
          return l2Normalize(proj.apply(net.apply(frames, { training }), { training }) as tf.Tensor2D);
        });
        const slots = Int32Array.from(inputs[1]!.dataSync());
        if (training) bank.hold(z, slots);
        return pairLogits(bank, z, slots, o.temperature, training);
      });
    },
    loss: (_labels, logits) => pairLoss(logits),
    metric: (_labels, logits) => pairAccuracy(logits),
    monitors: { embeddingStd: bankEmbeddingStd },
  };
}

/** CMC, L against ab, with the defaults (`--tasks cmc`). */
export const cmc = createCmcTask();

/** CMC on two synchronized cameras with the defaults (`--tasks cmc-views`, with `--views`). */
export const cmcViews = createCmcViewsTask();
