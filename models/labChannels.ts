import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../core/errors.ts';

/** What `LabChannels` outputs: lightness replicated to three channels, lightness alone, or the two chroma channels. */
export type LabPart = 'l3' | 'l' | 'ab';

/** Scale of the chroma channels: a and b divided by this lie in about [-1, 1] over the sRGB gamut. */
export const AB_SCALE = 110;

const DELTA = 6 / 29;

/**
 * RGB images `[..., 3]` (floats in [0, 1], sRGB) in CIE L*a*b* (D65), `[..., 3]` with L in [0, 100]: the same
 * formulas as `pipeline/labColour.ts`'s `rgbToLab`, in tensor ops so that a model can take RGB frames and see
 * lightness only (colorization, split-brain).
 */
export function rgbToLabTensor(rgb: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const c = tf.clipByValue(rgb, 0, 1);
    const linear = tf.where(tf.lessEqual(c, 0.04045), tf.div(c, 12.92), tf.pow(tf.div(tf.add(c, 0.055), 1.055), 2.4));
    // Columns: X, Y, Z of each of R, G, B, each divided by the D65 white.
    const toXyz = tf.tensor2d(
      [
        [0.4124564 / 0.95047, 0.2126729, 0.0193339 / 1.08883],
        [0.3575761 / 0.95047, 0.7151522, 0.119192 / 1.08883],
        [0.1804375 / 0.95047, 0.072175, 0.9503041 / 1.08883],
      ],
      [3, 3],
    );
    const shape = rgb.shape;
    const xyz = tf.reshape(tf.matMul(tf.reshape(linear, [-1, 3]), toXyz), shape);
    const f = tf.where(
      tf.greater(xyz, DELTA ** 3),
      tf.pow(tf.maximum(xyz, DELTA ** 3), 1 / 3),
      tf.add(tf.div(xyz, 3 * DELTA * DELTA), 4 / 29),
    );
    const [fx, fy, fz] = tf.split(f, 3, -1) as [tf.Tensor, tf.Tensor, tf.Tensor];
    return tf.concat([tf.sub(tf.mul(fy, 116), 16), tf.mul(tf.sub(fx, fy), 500), tf.mul(tf.sub(fy, fz), 200)], -1);
  });
}

/** Arguments of `LabChannels`. */
export interface LabChannelsArgs {
  /** 'l3': L / 100 replicated to three channels (what a 3-channel encoder reads); 'l': L / 100; 'ab': a, b / 110. */
  part: LabPart;
  name?: string;
}

/**
 * A layer without weights from RGB frames `[batch, H, W, 3]` in [0, 1] to part of their L*a*b*: the input
 * adapter of colorization and split-brain, so that a model built on it takes the same RGB frames as every other
 * encoder (evaluation feeds it plain frames) while the network behind it sees only lightness or only colour.
 */
export class LabChannels extends tf.layers.Layer {
  static className = 'LabChannels';
  readonly part: LabPart;

  constructor(args: LabChannelsArgs) {
    super({ name: args.name, trainable: false });
    if (!['l3', 'l', 'ab'].includes(args.part)) throw new OptionError('part', args.part, "'l3', 'l' or 'ab'");
    this.part = args.part;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = inputShape as tf.Shape;
    return [...shape.slice(0, -1), this.part === 'l3' ? 3 : this.part === 'l' ? 1 : 2];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => labPart(Array.isArray(inputs) ? inputs[0]! : inputs, this.part));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), part: this.part };
  }
}
tf.serialization.registerClass(LabChannels);

/** Part `part` of the Lab image of RGB frames `[..., 3]`, scaled as `LabChannels` documents. */
export function labPart(rgb: tf.Tensor, part: LabPart): tf.Tensor {
  return tf.tidy(() => {
    if (rgb.shape.at(-1) !== 3) throw new OptionError('frames', rgb.shape, 'RGB frames [..., 3] (colour, not --gray)');
    const lab = rgbToLabTensor(rgb);
    const size = rgb.shape.slice(0, -1).map(() => -1);
    const begin = rgb.shape.slice(0, -1).map(() => 0);
    if (part === 'ab') return tf.div(tf.slice(lab, [...begin, 1], [...size, 2]), AB_SCALE);
    const l = tf.div(tf.slice(lab, [...begin, 0], [...size, 1]), 100);
    return part === 'l' ? l : tf.concat([l, l, l], -1);
  });
}

/**
 * A model from the encoder's input to the output of its last conv block (`relu<k>` of `buildFrameEncoder`),
 * `[batch, H / 2^blocks, W / 2^blocks, channels]`, sharing the encoder's weights: what per-location heads read.
 * Kept per encoder (built once); never dispose it (its layers are the encoder's).
 *
 * @throws OptionError when the encoder has no `relu<k>` layer (not a frame encoder).
 */
export function lastConvBlock(encoder: tf.LayersModel): tf.LayersModel {
  let model = blockModels.get(encoder);
  if (!model) {
    const blocks = encoder.layers.filter((l) => /^relu\d+$/.test(l.name));
    const last = blocks.at(-1);
    if (!last) throw new OptionError('encoder', encoder.name, 'a frame encoder with conv blocks (relu0, relu1, ...)');
    model = tf.model({
      inputs: encoder.inputs,
      outputs: last.output as tf.SymbolicTensor,
      name: `${encoder.name}_map`,
    });
    blockModels.set(encoder, model);
  }
  return model;
}
const blockModels = new WeakMap<tf.LayersModel, tf.LayersModel>();
