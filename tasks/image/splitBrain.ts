import * as tf from '@tensorflow/tfjs';
import { map, type OperatorFunction } from 'rxjs';
import { buildFrameEncoder } from '../../models/frameEncoder.ts';
import { labPart, lastConvBlock } from '../../models/labChannels.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { imageToLab } from '../../pipeline/labColour.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { locationAccuracy, rebalancedCrossEntropy } from '../losses/rebalancedCrossEntropy.ts';
import { featureSizeOf, type PretextTask, type SamplerContext, type TaskParts } from '../task.ts';
import type { AbQuantizer } from './abBins.ts';
import {
  abLogits,
  cellDistributions,
  checkColourFrames,
  colourBins,
  colorizationSample,
  labConvRepresentation,
  locationHead,
  targetGrid,
} from './colorization.ts';

/** Bins of lightness the ab -> L half classifies into: L in [0, 100] cut into 50 bins of 2 units, as the paper. */
export const L_BINS = 50;

/** The bin of lightness `l` (0..100). */
export const lBinOf = (l: number): number => Math.min(L_BINS - 1, Math.max(0, Math.floor(l / (100 / L_BINS))));

/**
 * A colour frame as one split-brain sample: the input is the frame (`[H, W, 3]` floats in [0, 1]; each half takes
 * its channels in the graph), the label `[cells, Q + 50]` holds per location the soft-encoded ab distribution
 * (as colorization's) followed by the distribution of its pixels over the 50 lightness bins.
 */
export function splitBrainSample(frame: Frame, quantizer: AbQuantizer = colourBins().quantizer): Sample {
  const ab = colorizationSample(frame, quantizer);
  const { l } = imageToLab(frame.data);
  const grid = targetGrid([frame.height, frame.width]);
  const lightness = cellDistributions(frame.height, frame.width, grid, L_BINS, (i, out, offset, scale) => {
    out[offset + lBinOf(l[i]!)]! += scale;
  });
  const cells = grid[0] * grid[1];
  const q = quantizer.size;
  const label = new Float32Array(cells * (q + L_BINS));
  for (let c = 0; c < cells; c++) {
    label.set(ab.label.subarray(c * q, (c + 1) * q), c * (q + L_BINS));
    label.set(lightness.subarray(c * L_BINS, (c + 1) * L_BINS), c * (q + L_BINS) + q);
  }
  return { inputs: ab.inputs, label, source: frame.source };
}

/** The sampler: every colour frame becomes one sample. */
export function sampleSplitBrain(quantizer?: AbQuantizer): OperatorFunction<Frame, Sample> {
  return map((frame: Frame) => splitBrainSample(frame, quantizer));
}

/** `[batch, cells, Q + 50]` cut into its ab part `[batch, cells, Q]` and its lightness part `[batch, cells, 50]`. */
function halves(t: tf.Tensor): [tf.Tensor, tf.Tensor] {
  const q = t.shape[2]! - L_BINS;
  return [tf.slice(t, [0, 0, 0], [-1, -1, q]), tf.slice(t, [0, 0, q], [-1, -1, L_BINS])];
}

/**
 * The ab half: a frame encoder of the shared encoder's architecture (conv widths, blocks, feature size, pooling,
 * read from its layers) on two input channels, seeded by `seed`.
 */
function abEncoderLike(encoder: tf.LayersModel, seed: number): tf.LayersModel {
  const [height, width] = encoder.inputs[0]!.shape.slice(1) as [number, number];
  const convs = encoder.layers.filter((l) => /^conv\d+$/.test(l.name));
  const firstWidth = (convs[0]!.getConfig() as { filters: number }).filters;
  const average = encoder.layers.some((l) => l.getClassName() === 'GlobalAveragePooling2D');
  const normalized = encoder.layers.some((l) => l.getClassName() === 'BatchNormalization');
  const abEncoder = buildFrameEncoder({
    inputShape: [height, width, 2],
    featureSize: featureSizeOf(encoder),
    width: firstWidth,
    blocks: convs.length,
    seed,
    pooling: average ? 'average' : 'flatten',
    normalization: normalized ? 'batch' : 'none',
  });
  return tf.model({ inputs: abEncoder.inputs, outputs: abEncoder.outputs, name: 'ab_encoder' });
}

/**
 * Split-brain autoencoder (Zhang, Isola and Efros, CVPR 2017, "Split-Brain Autoencoders: Unsupervised Learning by
 * Cross-Channel Prediction"): a network split in two halves, one predicting the ab channels of a Lab image from
 * its L, the other L from ab; the representation is both halves' features concatenated.
 *
 * The paper: AlexNet cut channel-wise into two disjoint halves of half the width each, fully convolutional, on
 * ImageNet Lab images; L -> ab as a classification over the 313 ab bins (as colorization), ab -> L over L quantized
 * into 50 bins (it found classification losses better than regression); the features of both halves concatenated
 * layer by layer are the representation that is probed.
 *
 * This: classification on both sides, over the 261 shipped ab bins (see `colorization`) and 50 L bins of 2 units,
 * each location's target the distribution of its pixels (soft-encoded ab, hard L bins); the L -> ab half is the
 * shared encoder (L / 100 replicated to its three channels, as colorization) with colorization's 1 x 1 head on its
 * last conv block; the ab -> L half is a second frame encoder of the same architecture on two channels (a / 110,
 * b / 110), an `extra` part (`ab_encoder`) with its own 1 x 1 head (`l_head`); predictions at 1/8 of the frame.
 * The loss is the sum of the two halves' mean cross-entropies, unweighted (no class rebalancing in either half:
 * rebalancing serves vivid colour pictures, which this task does not draw). The representation
 * (`TaskParts.representation`, `labConvRepresentation`) takes RGB frames and concatenates both halves' last conv
 * blocks, flattened (2 x 1024 values for 32 x 32 frames and the default encoder). Differences, and why: each half
 * has the full width of the project's small encoder rather than half of it (the shared encoder's size is the
 * run's, and the L half is that encoder, so the representation is twice as wide as other tasks'); features are
 * concatenated at the last conv block, not at every layer; the halves' dense layers get no gradient from this task
 * (their heads read the conv maps), so they are not part of the representation.
 *
 * @example
 * const samples$ = frames$.pipe(splitBrain.sampler({ rng: new Rng(1) }));
 */
export const splitBrain = {
  name: 'split-brain',
  family: 'image-context',
  paper: 'Zhang, Isola, Efros. Split-Brain Autoencoders: Unsupervised Learning by Cross-Channel Prediction. CVPR 2017',
  reads: 'images',
  configure(setup) {
    checkColourFrames(setup.itemShape, 'split-brain');
    return this;
  },
  // Nothing random: every frame gives its own targets.
  sampler: (_context: SamplerContext) => sampleSplitBrain(),
  inputShapes: (itemShape) => [[itemShape[0]!, itemShape[1]!, 3]],
  labelShape: (itemShape) => {
    const [rows, cols] = targetGrid(itemShape);
    return [rows * cols, colourBins().quantizer.size + L_BINS];
  },
  build(encoder, rng): TaskParts {
    const shape = encoder.inputs[0]!.shape.slice(1) as number[];
    const grid = targetGrid(shape);
    const abEncoder = abEncoderLike(encoder, rng.int(2 ** 31));
    const lMap = lastConvBlock(encoder).outputs[0]!.shape.slice(1) as number[];
    const abMap = lastConvBlock(abEncoder).outputs[0]!.shape.slice(1) as number[];
    const head = locationHead('split_brain_ab_head', lMap, grid, colourBins().quantizer.size, rng);
    const lHead = locationHead('split_brain_l_head', abMap, grid, L_BINS, rng);
    const representation = labConvRepresentation(
      [
        { encoder, part: 'l3' },
        { encoder: abEncoder, part: 'ab' },
      ],
      'split_brain_representation',
    );
    return { head, extra: { ab_encoder: abEncoder, l_head: lHead }, representation };
  },
  forward(encoder, { head, extra }, inputs, training) {
    return tf.tidy(() => {
      const rgb = inputs[0]!;
      const abPart = abLogits(encoder, head, rgb, training);
      const abFeatures = lastConvBlock(extra!.ab_encoder!).apply(labPart(rgb, 'ab'), { training }) as tf.Tensor;
      const lLogits = extra!.l_head!.apply(abFeatures, { training }) as tf.Tensor;
      const lPart = tf.reshape(lLogits, [lLogits.shape[0]!, -1, L_BINS]);
      return tf.concat([abPart, lPart], -1);
    });
  },
  /** labels `[batch, cells, Q + 50]`, logits the same: ab cross-entropy plus L cross-entropy. */
  loss: (labels, logits) =>
    tf.tidy(() => {
      const [abLabels, lLabels] = halves(labels);
      const [abLogit, lLogit] = halves(logits);
      return tf.add(rebalancedCrossEntropy(abLabels, abLogit), rebalancedCrossEntropy(lLabels, lLogit)) as tf.Scalar;
    }),
  /** The mean of the two halves' location accuracies. */
  metric: (labels, logits) =>
    tf.tidy(() => {
      const [abLabels, lLabels] = halves(labels);
      const [abLogit, lLogit] = halves(logits);
      return tf.div(tf.add(locationAccuracy(abLabels, abLogit), locationAccuracy(lLabels, lLogit)), 2) as tf.Scalar;
    }),
} satisfies PretextTask<Frame>;
