import * as tf from '@tensorflow/tfjs';
import { map, type OperatorFunction } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import type { Rng } from '../../core/rng.ts';
import { type Frame, frameToFloat } from '../../pipeline/frame.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { featureSizeOf, type PretextTask, type SamplerContext } from '../task.ts';
import { decoderChannels, frameDecoder, frameShapeOf, maskedReconstruction } from './patches.ts';

/** How the autoencoder corrupts its input. */
export interface AutoencoderOptions {
  /**
   * 'mask' (default): each pixel (all its channels) is set to 0 with probability `level`, Vincent et al.'s masking
   * noise; 'gaussian': N(0, `level`^2) added to every value, clipped to [0, 1]; 'none': a plain autoencoder.
   */
  noise?: 'mask' | 'gaussian' | 'none';
  /** The masking probability or the noise's standard deviation. Default 0.25 for 'mask', 0.1 for 'gaussian'. */
  level?: number;
}

/** `pixels` (floats in [0, 1], HWC with `channels`) corrupted as `options` say, drawn from `rng`. */
export function corrupt(
  pixels: Float32Array,
  channels: number,
  options: Required<AutoencoderOptions>,
  rng: Rng,
): Float32Array {
  const out = Float32Array.from(pixels);
  if (options.noise === 'mask') {
    for (let p = 0; p < out.length; p += channels) {
      if (rng.next() < options.level) out.fill(0, p, p + channels);
    }
  } else if (options.noise === 'gaussian') {
    for (let i = 0; i < out.length; i++) out[i] = Math.min(1, Math.max(0, out[i]! + options.level * rng.normal()));
  }
  return out;
}

/** Every pixel counts in the reconstruction figure. */
const whole = (targets: tf.Tensor): tf.Tensor => tf.ones([...targets.shape.slice(0, 3), 1]);

/**
 * A (denoising) autoencoder task with `options`; the registry's `autoencoder` is `autoencoderTask()` (masking noise
 * 0.25).
 *
 * The papers: an autoencoder (Hinton and Salakhutdinov, Science 2006) learns a code from which its decoder
 * reconstructs the input; the denoising autoencoder (Vincent, Larochelle, Bengio and Manzagol, ICML 2008,
 * "Extracting and Composing Robust Features with Denoising Autoencoders") corrupts the input (masking noise: a
 * random fraction of the input set to 0) and reconstructs the clean input, so the code must capture how the parts
 * of an input depend on each other. The baseline of the image-context family.
 *
 * This: a sample is a frame with masking noise (`[H, W, C]`, each pixel zeroed with probability 0.25) and the clean
 * frame as its label; the shared frame encoder gives the code (its output, 64-d by default), and the head is the
 * decoder (`frameDecoder`: a dense layer to the encoder's last map size, stride-2 transposed convolutions mirroring
 * the encoder's conv blocks, a sigmoid conv to the frame's channels), trained with the mean squared error over every
 * pixel (Vincent et al. use cross-entropy for inputs in [0, 1]; squared error is the other loss they name). The
 * metric is the fraction of variance explained: 1 - the error / the error of the batch's per-pixel mean image.
 * Differences, and why: convolutional, not the paper's fully connected layers with tied weights (the encoder is the
 * project's shared conv encoder); trained end to end, not layer by layer (stacking is not needed with today's
 * optimizers and batch normalization); squared error rather than cross-entropy.
 *
 * @example
 * const denoiser = autoencoderTask({ noise: 'gaussian', level: 0.1 });
 */
export function autoencoderTask(options: AutoencoderOptions = {}): PretextTask<Frame> {
  const noise = options.noise ?? 'mask';
  if (!['mask', 'gaussian', 'none'].includes(noise))
    throw new OptionError('noise', noise, "'mask', 'gaussian' or 'none'");
  const level = options.level ?? (noise === 'gaussian' ? 0.1 : 0.25);
  if (!(level >= 0 && (noise !== 'mask' || level < 1)))
    throw new OptionError('level', level, 'a masking probability in [0, 1) or a standard deviation >= 0');
  const settings = { noise, level };
  return {
    name: 'autoencoder',
    family: 'image-context',
    paper:
      'Vincent, Larochelle, Bengio, Manzagol. Extracting and Composing Robust Features with Denoising Autoencoders. ICML 2008',
    reads: 'images',
    configure(setup) {
      if (setup.itemShape.length !== 3)
        throw new OptionError('--width/--height', setup.itemShape, 'frames [height, width, channels] for autoencoder');
      return this;
    },
    sampler: (context: SamplerContext): OperatorFunction<Frame, Sample> =>
      map((frame) => {
        const clean = frameToFloat(frame);
        return { inputs: [corrupt(clean, frame.channels, settings, context.rng)], label: clean, source: frame.source };
      }),
    inputShapes: (itemShape) => [[...itemShape]],
    labelShape: (itemShape) => [...itemShape],
    build(encoder, rng) {
      const head = frameDecoder(
        'autoencoder_decoder',
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
    /** labels: clean frames `[batch, H, W, C]`; predictions the same: mean squared error over every value. */
    loss: (labels, predictions) => tf.tidy(() => tf.mean(tf.square(tf.sub(predictions, labels))) as tf.Scalar),
    metric: (labels, predictions) => tf.tidy(() => maskedReconstruction(labels, predictions, whole(labels)).explained),
  } satisfies PretextTask<Frame>;
}

/** The registry's denoising autoencoder: masking noise, each pixel zeroed with probability 0.25. */
export const autoencoder = autoencoderTask();
