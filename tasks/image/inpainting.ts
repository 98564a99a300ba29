import * as tf from '@tensorflow/tfjs';
import { map, type OperatorFunction } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import type { Rng } from '../../core/rng.ts';
import { type Frame, frameToFloat } from '../../pipeline/frame.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { featureSizeOf, type PretextTask, type SamplerContext } from '../task.ts';
import { decoderChannels, frameDecoder, frameShapeOf, maskedReconstruction } from './patches.ts';

/** Which region the context encoder has to fill. */
export type InpaintingMask = 'central' | 'random-block';

/** Options of {@link inpaintingTask}. */
export interface InpaintingOptions {
  /**
   * 'central' (default): the centre rectangle of half the frame's height and width (a quarter of its area), as the
   * paper's central region (64 x 64 of 128 x 128); 'random-block': rectangles of 1/8 to 1/4 of the sides at random
   * places until they cover a quarter of the frame, as the paper's random blocks.
   */
  mask?: InpaintingMask;
}

/**
 * The mask of one sample: 1 where the frame is dropped, `height * width` values. Central masks draw nothing from
 * `rng`.
 */
export function inpaintingMask(height: number, width: number, kind: InpaintingMask, rng: Rng): Float32Array {
  const mask = new Float32Array(height * width);
  const fill = (top: number, left: number, h: number, w: number) => {
    for (let y = top; y < top + h; y++) mask.fill(1, y * width + left, y * width + left + w);
  };
  if (kind === 'central') {
    const [h, w] = [Math.max(1, height >> 1), Math.max(1, width >> 1)];
    fill((height - h) >> 1, (width - w) >> 1, h, w);
    return mask;
  }
  const target = (height * width) / 4;
  let covered = 0;
  // Each block covers at least one pixel, so the loop ends; the cap keeps a tiny frame from looping long.
  for (let k = 0; k < 64 && covered < target; k++) {
    const h = Math.max(1, Math.round(height * rng.uniform(1 / 8, 1 / 4)));
    const w = Math.max(1, Math.round(width * rng.uniform(1 / 8, 1 / 4)));
    fill(rng.int(height - h + 1), rng.int(width - w + 1), h, w);
    covered = mask.reduce((a, b) => a + b, 0);
  }
  return mask;
}

/**
 * One inpainting sample of `frame`: the input is the frame with the masked pixels set to the mean of the kept ones
 * (per channel, as the paper fills the region with the mean pixel value), the label `[H, W, C + 1]` the clean frame
 * with the mask as its last channel.
 */
export function inpaintingSample(frame: Frame, kind: InpaintingMask, rng: Rng): Sample {
  const { width, height, channels } = frame;
  const clean = frameToFloat(frame);
  const mask = inpaintingMask(height, width, kind, rng);
  const means = new Float64Array(channels);
  let kept = 0;
  for (let p = 0; p < mask.length; p++) {
    if (mask[p]) continue;
    kept++;
    for (let c = 0; c < channels; c++) means[c]! += clean[p * channels + c]!;
  }
  const input = Float32Array.from(clean);
  const label = new Float32Array(height * width * (channels + 1));
  for (let p = 0; p < mask.length; p++) {
    for (let c = 0; c < channels; c++) {
      if (mask[p]) input[p * channels + c] = kept > 0 ? means[c]! / kept : 0.5;
      label[p * (channels + 1) + c] = clean[p * channels + c]!;
    }
    label[p * (channels + 1) + channels] = mask[p]!;
  }
  return { inputs: [input], label, source: frame.source };
}

/** Labels `[batch, H, W, C + 1]` as the clean frames and the mask `[batch, H, W, 1]`. */
function split(labels: tf.Tensor): { targets: tf.Tensor; mask: tf.Tensor } {
  const channels = labels.shape[3]! - 1;
  const [targets, mask] = tf.split(labels, [channels, 1], 3);
  return { targets: targets!, mask: mask! };
}

/**
 * Inpainting with a context encoder, made with `options`; the registry's `inpainting` is `inpaintingTask()` (central
 * masks).
 *
 * The paper: Pathak, Krähenbühl, Donahue, Darrell and Efros, CVPR 2016, "Context Encoders: Feature Learning by
 * Inpainting". An AlexNet-like encoder reads an image with a region dropped (filled with the mean pixel value), a
 * channel-wise fully connected layer and an up-convolutional decoder predict the region's pixels; the loss is L2 on
 * the dropped region (central: a 64 x 64 square of 128 x 128 images, predicted with a 7-pixel overlap into the
 * context whose loss is weighted 10 times; random blocks; random regions from segmentation masks) plus an
 * adversarial term (weight 0.001) from a discriminator that tells real regions from predicted ones; its feature
 * learning experiments use the random-region masks.
 *
 * This: a sample is the frame with the mask's pixels set to the mean of the kept ones and, as its label, the clean
 * frame with the mask as an extra channel; the shared frame encoder reads the masked frame and the head is the
 * decoder (`frameDecoder`: dense to the encoder's last map size, stride-2 transposed convolutions, a sigmoid conv
 * to the frame's channels) predicting the whole frame; the loss is the mean squared error over the masked pixels
 * only; central masks (the centre quarter) or random blocks (`inpaintingTask({ mask: 'random-block' })`). The
 * metric is the fraction of the masked pixels' variance explained (1 - error / error of the batch's mean image
 * there). Differences, and why: the encoder is the project's small shared one and its 64-d output is the
 * bottleneck (no channel-wise fully connected layer: the shared encoder ends in a dense layer already); no overlap
 * region with a 10x weight (a refinement of the central region's seams, not of the features); no random regions
 * shaped like segmentation masks (they need a segmented dataset); and no adversarial term: the trainer minimizes one
 * summed loss with one optimizer, while a discriminator must maximize what the generator minimizes (alternating
 * steps or a gradient reversal the trainer does not have); it is left for a later change.
 *
 * @example
 * const blocks = inpaintingTask({ mask: 'random-block' });
 */
export function inpaintingTask(options: InpaintingOptions = {}): PretextTask<Frame> {
  const kind = options.mask ?? 'central';
  if (kind !== 'central' && kind !== 'random-block') throw new OptionError('mask', kind, "'central' or 'random-block'");
  return {
    name: 'inpainting',
    family: 'image-context',
    paper: 'Pathak, Krähenbühl, Donahue, Darrell, Efros. Context Encoders: Feature Learning by Inpainting. CVPR 2016',
    reads: 'images',
    configure(setup) {
      const [height, width] = setup.itemShape;
      if (!(height! >= 2 && width! >= 2))
        throw new OptionError('--width/--height', setup.itemShape, 'frames of at least 2 x 2 pixels for inpainting');
      return this;
    },
    sampler: (context: SamplerContext): OperatorFunction<Frame, Sample> =>
      map((frame) => inpaintingSample(frame, kind, context.rng)),
    inputShapes: (itemShape) => [[...itemShape]],
    labelShape: ([height, width, channels]) => [height!, width!, channels! + 1],
    build(encoder, rng) {
      const head = frameDecoder(
        'inpainting_decoder',
        featureSizeOf(encoder),
        frameShapeOf(encoder),
        decoderChannels(encoder),
        rng,
      );
      return { head };
    },
    forward(encoder, { head }, inputs, training) {
      return tf.tidy(() => head.apply(encoder.apply(inputs[0]!, { training }), { training }) as tf.Tensor);
    },
    /** labels `[batch, H, W, C + 1]` (clean frame, mask), predictions `[batch, H, W, C]`: L2 on the masked pixels. */
    loss: (labels, predictions) =>
      tf.tidy(() => {
        const { targets, mask } = split(labels);
        return maskedReconstruction(targets, predictions, mask).mse;
      }),
    metric: (labels, predictions) =>
      tf.tidy(() => {
        const { targets, mask } = split(labels);
        return maskedReconstruction(targets, predictions, mask).explained;
      }),
  } satisfies PretextTask<Frame>;
}

/** The registry's context encoder: central masks, L2 on the masked region. */
export const inpainting = inpaintingTask();
