import * as tf from '@tensorflow/tfjs';
import type { OperatorFunction } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import type { Rng } from '../../core/rng.ts';
import { mlpHead } from '../../models/heads.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { isStreamInput } from '../../pipeline/probeVideo.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { l2Normalize } from '../losses/infoNce.ts';
import { categoricalAccuracy, softmaxCrossEntropy } from '../losses/softmaxCrossEntropy.ts';
import { featureSizeOf, type PretextTask, type SamplerContext } from '../task.ts';
import { bankEmbeddingStd, MemoryBank, slotOf } from './memoryBank.ts';
import { augmentInGroups, resolveViewPairOptions, simclrViewRecipe, type ViewPairOptions } from './simclr.ts';

/** Options of {@link createInstanceDiscTask}. */
export interface InstanceDiscOptions extends ViewPairOptions {
  /** Softmax temperature. Default 0.07, the paper's. */
  temperature?: number;
  /** Weight of a slot's old vector in its update. Default 0.5, the paper's. */
  momentum?: number;
  /** Negatives drawn from the bank per step (shared by the batch). Default 4096, the paper's m; at most slots - 1. */
  negatives?: number;
  /** Size of the embedding the bank stores. Default 128, the paper's. */
  dim?: number;
  /**
   * Slots of the bank. An image run sets it to the number of images (`TaskSetup.itemCount`), one slot each; video
   * files, whose frame count is not known up front, get this many slots, frames hashed into them (`slotOf`).
   * Default 16384.
   */
  bankSize?: number;
  /** Whether a frame's `index` is its position in an image set (set by `configure` from `itemCount`). */
  indexed?: boolean;
}

/** Refuses live inputs: their frames are never seen again, so a slot per frame would never be a positive. */
function checkIndexedInputs(inputs: readonly string[] | undefined): void {
  const live = inputs?.find(isStreamInput);
  if (live !== undefined)
    throw new OptionError(
      '--video',
      live,
      'files or --images: instance-disc keeps one memory slot per item, and a live stream never shows a frame twice (record it to a file first, or use --tasks moco, whose queue needs no item index)',
    );
}

/**
 * Frames to instance-discrimination samples: one augmented view `[H, W, C]` (SimCLR's augmentation, which with
 * strength 0.5 is the paper's jitter of 0.4) and the frame's bank slot `[1]`. The label is unused.
 */
export function sampleInstances(
  options: ViewPairOptions,
  bankSize: number,
  indexed: boolean,
  rng: Rng,
): OperatorFunction<Frame, Sample> {
  const resolved = resolveViewPairOptions(options);
  const label = new Float32Array(1);
  return augmentInGroups<Frame>(
    resolved.group,
    {
      frames: (frame) => [frame],
      sample: (frame, view) => ({
        inputs: [view, Float32Array.of(slotOf(frame, bankSize, indexed))],
        label,
        source: frame.source,
      }),
    },
    (size) => simclrViewRecipe(resolved, size),
    rng,
  );
}

/** Cross-entropy with column 0 (the item's own slot) as the target, and its top-1. */
const ownColumn = (logits: tf.Tensor) => tf.oneHot(tf.zeros([logits.shape[0]!], 'int32'), logits.shape[1]!);

/**
 * Instance discrimination (Wu, Xiong, Yu, Lin, CVPR 2018, "Unsupervised Feature Learning via Non-Parametric
 * Instance Discrimination"): every training image is its own class. The encoder and a linear projection map an
 * augmented image to an l2-normalized 128-d vector f; a memory bank keeps one vector v_j per image, the running
 * mean of its past features (v <- normalize(0.5 v + 0.5 f)); the non-parametric softmax
 * P(i | f) = exp(v_i . f / T) / sum_j exp(v_j . f / T), T = 0.07, is trained to pick the image's own slot. The
 * encoder's output is the representation.
 *
 * The paper: ResNet-50 on ImageNet (1.28 M slots), the softmax over all slots approximated by NCE with m = 4096
 * noise samples drawn uniformly from the bank (its normalising constant Z estimated once from the first batch),
 * SGD 200 epochs, random resized crop, grayscale, colour jitter 0.4, flip.
 *
 * This: the same bank (`MemoryBank`: momentum 0.5, unit vectors, checkpointed with the generator of its negatives
 * so that `--resume` continues exactly), projection (linear to 128) and temperature, on the shared encoder.
 * Differences, and why: the normaliser is approximated by a softmax over the own slot and 4096 negatives drawn
 * uniformly from the bank per step, shared by the batch (the own slot masked where drawn), not by NCE: the
 * sampled softmax needs no estimate of Z (a constant NCE fixes from the first batch and never updates, which at
 * these short runs is far from its final value) and CMC (Tian et al. 2019, the same group of methods) found it
 * learns better than NCE; drawing once per batch makes the negatives one `[4096, 128]` gather instead of one
 * per sample. Crops keep 30 to 100% of the area and Adam replaces SGD, as `simclr`. Slots: an image run has one
 * per image (a frame's `index` is its place in the image set); video files, whose frame count is unknown before
 * decoding, hash their frames into 16384 slots (`slotOf`: consecutive frames of a file in consecutive slots); a
 * live stream is refused with an `OptionError` (its frames never come back, so their slots would never be
 * positives: use `moco`).
 *
 * @example
 * const task = createInstanceDiscTask({ bankSize: 14000, indexed: true });
 */
export function createInstanceDiscTask(options: InstanceDiscOptions = {}): PretextTask<Frame> {
  resolveViewPairOptions(options);
  const {
    temperature = 0.07,
    momentum = 0.5,
    negatives = 4096,
    dim = 128,
    bankSize = 16384,
    indexed = false,
  } = options;
  if (!(temperature > 0)) throw new OptionError('temperature', temperature, 'a positive number');
  if (!Number.isInteger(dim) || dim < 1) throw new OptionError('dim', dim, 'a positive integer');
  if (!Number.isInteger(bankSize) || bankSize < 2) throw new OptionError('bankSize', bankSize, 'an integer >= 2');
  const drawn = Math.min(negatives, bankSize - 1);
  return {
    name: 'instance-disc',
    family: 'contrastive',
    paper: 'Wu, Xiong, Yu, Lin. Unsupervised Feature Learning via Non-Parametric Instance Discrimination. CVPR 2018',
    reads: 'images',
    configure(setup) {
      const [height, width] = setup.itemShape;
      if (!(height! >= 8 && width! >= 8))
        throw new OptionError('--width/--height', setup.itemShape, 'frames of at least 8 x 8 pixels for instance-disc');
      if (setup.itemCount === undefined) return this;
      return createInstanceDiscTask({ ...options, bankSize: setup.itemCount, indexed: true });
    },
    sampler(context: SamplerContext) {
      checkIndexedInputs(context.inputs);
      return sampleInstances(options, bankSize, indexed, context.rng);
    },
    inputShapes: (itemShape) => [[...itemShape], [1]],
    labelShape: () => [1],
    build(encoder, rng) {
      const head = mlpHead('instance_disc_head', featureSizeOf(encoder), [{ units: dim }], rng);
      const state = new MemoryBank({ size: bankSize, dim, momentum, negatives: drawn, seed: rng.int(2 ** 31) });
      return { head, state };
    },
    /** Logits `[batch, 1 + negatives]`: the feature against its own slot (column 0), then the step's negatives. */
    forward(encoder, { head, state }, inputs, training) {
      const bank = state as MemoryBank;
      return tf.tidy(() => {
        const features = l2Normalize(head.apply(encoder.apply(inputs[0]!, { training }), { training }) as tf.Tensor2D);
        const slots = Int32Array.from(inputs[1]!.dataSync());
        if (training) bank.hold([features], slots);
        return bank.logits(0, features, slots, temperature, training);
      });
    },
    loss: (_labels, logits) => tf.tidy(() => softmaxCrossEntropy(ownColumn(logits), logits)),
    /** Top-1: how often the own slot beats every drawn negative (chance 1 / (1 + negatives)). */
    metric: (_labels, logits) => tf.tidy(() => categoricalAccuracy(ownColumn(logits), logits)),
    monitors: { embeddingStd: bankEmbeddingStd },
  };
}

/** Instance discrimination with the defaults (`--tasks instance-disc`). */
export const instanceDisc = createInstanceDiscTask();
