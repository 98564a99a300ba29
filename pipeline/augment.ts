import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../core/errors.ts';
import type { Rng } from '../core/rng.ts';

/**
 * One augmentation building block: a batched op on `[batch, H, W, C]` floats in [0, 1] whose random parameters
 * are drawn per sample from the `Rng`, in sample order, so the same seed gives the same output on any backend.
 * `apply` runs inside `augment`'s `tf.tidy`.
 */
export interface Augmentation {
  /** The block's name, for logs and run summaries. */
  readonly name: string;
  /** `[batch, H, W, C]` -> `[batch, H', W', C]`. */
  apply(images: tf.Tensor4D, rng: Rng): tf.Tensor4D;
}

/** A recipe: building blocks applied in order. */
export type Recipe = readonly Augmentation[];

/**
 * Applies a recipe to a batch, inside one `tf.tidy`: only the returned tensor survives, and the caller disposes
 * it. The input is not disposed.
 *
 * @throws OptionError when the batch is not `[batch, H, W, 1 | 3]`.
 * @example
 * const views = augment(batch, simclrRecipe(), new Rng(7));
 */
export function augment(images: tf.Tensor4D, recipe: Recipe, rng: Rng): tf.Tensor4D {
  if (images.rank !== 4 || (images.shape[3] !== 1 && images.shape[3] !== 3)) {
    throw new OptionError('images', images.shape, 'a [batch, height, width, channels] tensor with 1 or 3 channels');
  }
  // Clone so the caller owns (and may dispose) the result even when no block made a new tensor.
  return tf.tidy(() => {
    const out = recipe.reduce((x, block) => block.apply(x, rng), images);
    return out === images ? tf.clone(images) : out;
  });
}

/** Options of `randomResizedCrop`. */
export interface RandomResizedCropOptions {
  /** Output `[height, width]`. Default: the input size. */
  size?: readonly [number, number];
  /** Range of the crop's area as a fraction of the image's. Default `[0.08, 1]`. */
  scale?: readonly [number, number];
  /** Range of the crop's aspect ratio (width / height). Default `[3/4, 4/3]`. */
  ratio?: readonly [number, number];
}

/**
 * Random resized crop (Szegedy et al. 2015, the first step of SimCLR): a crop of random area and aspect ratio,
 * resized (bilinear, `tf.image.cropAndResize`) to `size`. As torchvision does, ten draws are tried before falling
 * back to the largest centred crop of an allowed ratio.
 */
export function randomResizedCrop(options: RandomResizedCropOptions = {}): Augmentation {
  const { size, scale = [0.08, 1], ratio = [3 / 4, 4 / 3] } = options;
  if (size && !size.every((s) => Number.isInteger(s) && s > 0))
    throw new OptionError('size', size, '[height, width] of positive integers');
  checkRange('scale', scale, 0, 1, false);
  checkRange('ratio', ratio, 0, Infinity, false);
  return {
    name: 'randomResizedCrop',
    apply(images, rng) {
      const [batch, height, width] = images.shape;
      const boxes: number[][] = [];
      for (let i = 0; i < batch; i++) boxes.push(drawCropBox(height, width, scale, ratio, rng));
      const indices = tf.range(0, batch, 1, 'int32') as tf.Tensor1D;
      return tf.image.cropAndResize(
        images,
        tf.tensor2d(boxes, [batch, 4]),
        indices,
        size ? [size[0], size[1]] : [height, width],
        'bilinear',
      );
    },
  };
}

/** A crop box `[y1, x1, y2, x2]` in cropAndResize's normalised coordinates (0 and 1 are the edge pixel centres). */
function drawCropBox(
  height: number,
  width: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
  rng: Rng,
): number[] {
  const area = height * width;
  const [logLo, logHi] = [Math.log(ratio[0]), Math.log(ratio[1])];
  let h = height;
  let w = width;
  let found = false;
  for (let attempt = 0; attempt < 10 && !found; attempt++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    w = Math.round(Math.sqrt(target * aspect));
    h = Math.round(Math.sqrt(target / aspect));
    found = w > 0 && h > 0 && w <= width && h <= height;
  }
  if (!found) {
    // Largest centred crop whose aspect ratio is within range.
    const aspect = width / height;
    [w, h] =
      aspect < ratio[0]
        ? [width, Math.round(width / ratio[0])]
        : aspect > ratio[1]
          ? [Math.round(height * ratio[1]), height]
          : [width, height];
  }
  const top = found ? rng.int(height - h + 1) : Math.floor((height - h) / 2);
  const left = found ? rng.int(width - w + 1) : Math.floor((width - w) / 2);
  const ny = (v: number) => (height > 1 ? v / (height - 1) : 0);
  const nx = (v: number) => (width > 1 ? v / (width - 1) : 0);
  return [ny(top), nx(left), ny(top + h - 1), nx(left + w - 1)];
}

/** Flips each image left-right with probability `p` (default 0.5). */
export function horizontalFlip(p = 0.5): Augmentation {
  checkProbability('p', p);
  return {
    name: 'horizontalFlip',
    apply(images, rng) {
      const mask = drawMask(images.shape, p, rng);
      // gather with reversed indices: the same as tf.reverse(images, 2), about ten times faster on the cpu backend.
      const reversed = tf.tensor1d(
        Array.from({ length: images.shape[2] }, (_, i) => images.shape[2] - 1 - i),
        'int32',
      );
      return blend(mask, tf.gather(images, reversed, 2), images);
    },
  };
}

/** Options of `colorJitter`. */
export interface ColorJitterOptions {
  /** Probability that an image is jittered at all. Default 0.8. */
  p?: number;
  /** Brightness factor drawn from `[max(0, 1 - b), 1 + b]`, multiplying the pixels. Default 0.4. */
  brightness?: number;
  /** Contrast factor drawn likewise, scaling the distance to the image's mean grey. Default 0.4. */
  contrast?: number;
  /** Saturation factor drawn likewise, scaling each pixel's distance to its own grey. Default 0.4. */
  saturation?: number;
}

/**
 * Colour jitter as in SimCLR (Chen et al. 2020), without hue (tfjs has no RGB/HSV conversion): brightness, then
 * contrast, then saturation, each a per-image factor, clipped to [0, 1] after each step. The fixed order differs
 * from torchvision's random order. Saturation does nothing on one-channel images.
 */
export function colorJitter(options: ColorJitterOptions = {}): Augmentation {
  const { p = 0.8, brightness = 0.4, contrast = 0.4, saturation = 0.4 } = options;
  checkProbability('p', p);
  for (const [name, value] of [
    ['brightness', brightness],
    ['contrast', contrast],
    ['saturation', saturation],
  ] as const) {
    if (!(value >= 0 && Number.isFinite(value)))
      throw new OptionError(name, value, 'a non-negative number (0 turns it off)');
  }
  return {
    name: 'colorJitter',
    apply(images, rng) {
      const batch = images.shape[0];
      // One set of draws per image whether or not it is jittered, so p does not shift later images' draws.
      const factors = { b: [] as number[], c: [] as number[], s: [] as number[] };
      for (let i = 0; i < batch; i++) {
        const on = rng.next() < p;
        const b = rng.uniform(Math.max(0, 1 - brightness), 1 + brightness);
        const c = rng.uniform(Math.max(0, 1 - contrast), 1 + contrast);
        const s = rng.uniform(Math.max(0, 1 - saturation), 1 + saturation);
        factors.b.push(on ? b : 1);
        factors.c.push(on ? c : 1);
        factors.s.push(on ? s : 1);
      }
      const channels = images.shape[3];
      // Each step is a blend towards a reference image: x' = clip(ref + factor * (x - ref)).
      const towards = (x: tf.Tensor4D, ref: tf.Tensor, factor: number[]): tf.Tensor4D =>
        tf.clipByValue(tf.add(tf.mul(tf.sub(x, ref), perImage(factor, images.shape)), ref), 0, 1) as tf.Tensor4D;
      let x = towards(images, tf.scalar(0), factors.b);
      const meanGray = tf.tile(tf.mean(toGray(x), [1, 2, 3], true), [1, ...images.shape.slice(1)]);
      x = towards(x, meanGray, factors.c);
      return towards(x, expandChannels(toGray(x), channels), factors.s);
    },
  };
}

/** Turns each image grey (ITU-R 601 luma, kept in all channels) with probability `p` (default 0.2). */
export function randomGrayscale(p = 0.2): Augmentation {
  checkProbability('p', p);
  return {
    name: 'randomGrayscale',
    apply(images, rng) {
      const mask = drawMask(images.shape, p, rng);
      return blend(mask, expandChannels(toGray(images), images.shape[3]), images);
    },
  };
}

/** Options of `gaussianBlur`. */
export interface GaussianBlurOptions {
  /** Probability that an image is blurred. Default 0.5. */
  p?: number;
  /** Range of the blur's standard deviation, in pixels. Default `[0.1, 2]`. */
  sigma?: readonly [number, number];
  /** Odd kernel side in pixels. Default: about a tenth of the image's smaller side (SimCLR), at least 3. */
  kernelSize?: number;
}

/**
 * Gaussian blur with a per-image sigma, as one batched separable depthwise convolution: the batch is folded into
 * the channel axis (`[1, H, W, batch * C]`) so that each image gets its own kernel; borders are mirrored.
 */
export function gaussianBlur(options: GaussianBlurOptions = {}): Augmentation {
  const { p = 0.5, sigma = [0.1, 2], kernelSize } = options;
  checkProbability('p', p);
  checkRange('sigma', sigma, 0, Infinity, false);
  if (kernelSize !== undefined && !(Number.isInteger(kernelSize) && kernelSize >= 1 && kernelSize % 2 === 1)) {
    throw new OptionError('kernelSize', kernelSize, 'an odd positive integer');
  }
  return {
    name: 'gaussianBlur',
    apply(images, rng) {
      const [batch, height, width, channels] = images.shape;
      let k = kernelSize ?? Math.max(3, Math.round(Math.min(height, width) / 10) | 1);
      // Mirror padding needs the radius below the image side.
      k = Math.min(k, 2 * Math.floor((Math.min(height, width) - 1) / 2) + 1);
      const radius = (k - 1) / 2;
      if (radius === 0) return images;
      const taps: number[][] = [];
      for (let i = 0; i < batch; i++) {
        const on = rng.next() < p;
        const s = rng.uniform(sigma[0], sigma[1]);
        taps.push(on ? gaussianTaps(s, radius) : deltaTaps(radius));
      }
      // Filter [k, 1, batch * C, 1]: tap t of image i, repeated for each of its channels.
      const filter = new Float32Array(k * batch * channels);
      for (let t = 0; t < k; t++) {
        for (let i = 0; i < batch; i++)
          for (let c = 0; c < channels; c++) filter[t * batch * channels + i * channels + c] = taps[i]![t]!;
      }
      const vertical = tf.tensor4d(filter, [k, 1, batch * channels, 1]);
      const horizontal = tf.reshape(vertical, [1, k, batch * channels, 1]) as tf.Tensor4D;
      // [batch, H, W, C] -> [1, H, W, batch * C]
      const folded = tf.reshape(tf.transpose(images, [1, 2, 0, 3]), [
        1,
        height,
        width,
        batch * channels,
      ]) as tf.Tensor4D;
      const padded = tf.mirrorPad(
        folded,
        [
          [0, 0],
          [radius, radius],
          [radius, radius],
          [0, 0],
        ],
        'reflect',
      );
      const blurred = tf.depthwiseConv2d(tf.depthwiseConv2d(padded, vertical, 1, 'valid'), horizontal, 1, 'valid');
      return tf.transpose(tf.reshape(blurred, [height, width, batch, channels]), [2, 0, 1, 3]) as tf.Tensor4D;
    },
  };
}

function gaussianTaps(sigma: number, radius: number): number[] {
  const taps = Array.from({ length: 2 * radius + 1 }, (_, t) => Math.exp(-((t - radius) ** 2) / (2 * sigma * sigma)));
  const sum = taps.reduce((a, b) => a + b, 0);
  return taps.map((v) => v / sum);
}

function deltaTaps(radius: number): number[] {
  return Array.from({ length: 2 * radius + 1 }, (_, t) => (t === radius ? 1 : 0));
}

/** Options of `simclrRecipe`. */
export interface SimclrRecipeOptions {
  /** Output `[height, width]`. Default: the input size. */
  size?: readonly [number, number];
  /** Colour jitter strength s: brightness, contrast and saturation 0.8 s. Default 0.5 (SimCLR's CIFAR setting). */
  strength?: number;
  /** Include the Gaussian blur (SimCLR uses it on ImageNet, not on CIFAR). Default true. */
  blur?: boolean;
}

/**
 * The SimCLR augmentation pipeline (Chen et al., ICML 2020, appendix A): random resized crop, horizontal flip,
 * colour jitter (p 0.8), grayscale (p 0.2), Gaussian blur (p 0.5).
 *
 * @example
 * const [a, b] = [augment(batch, simclrRecipe(), rng), augment(batch, simclrRecipe(), rng)];
 */
export function simclrRecipe(options: SimclrRecipeOptions = {}): Recipe {
  const { size, strength = 0.5, blur = true } = options;
  if (!(strength >= 0 && Number.isFinite(strength)))
    throw new OptionError('strength', strength, 'a non-negative number, e.g. 0.5 or 1');
  const jitter = 0.8 * strength;
  return [
    randomResizedCrop(size ? { size } : {}),
    horizontalFlip(0.5),
    colorJitter({ p: 0.8, brightness: jitter, contrast: jitter, saturation: jitter }),
    randomGrayscale(0.2),
    ...(blur ? [gaussianBlur({ p: 0.5 })] : []),
  ];
}

// The cpu backend runs element-wise ops fast only on equal shapes or a scalar; any other broadcast (a
// [batch, 1, 1, 1] factor, a [3] weight vector) takes a per-element index path ~7x slower. So per-image values are
// written out at full shape in JS (about 1 ms for 32 x 64 x 64 x 3), and channel sums and copies use matMul and concat.

/** Luma `[batch, H, W, 1]`; a one-channel image is its own luma. */
function toGray(images: tf.Tensor4D): tf.Tensor4D {
  const [batch, height, width, channels] = images.shape;
  if (channels === 1) return images;
  const weights = tf.tensor2d([0.299, 0.587, 0.114], [3, 1]);
  return tf.reshape(tf.matMul(tf.reshape(images, [-1, 3]), weights), [batch, height, width, 1]);
}

/** `[batch, H, W, 1]` -> `[batch, H, W, channels]`, the one channel copied. */
function expandChannels(gray: tf.Tensor4D, channels: number): tf.Tensor4D {
  return channels === 1
    ? gray
    : tf.concat(
        Array.from({ length: channels }, () => gray),
        3,
      );
}

/** A tensor of `shape` whose image i is filled with `values[i]`. */
function perImage(values: readonly number[], shape: readonly [number, number, number, number]): tf.Tensor4D {
  const size = shape[1] * shape[2] * shape[3];
  const data = new Float32Array(shape[0] * size);
  values.forEach((v, i) => data.fill(v, i * size, (i + 1) * size));
  return tf.tensor4d(data, [...shape]);
}

/** A tensor of `shape` whose image i is all 1 (with probability p) or all 0. */
function drawMask(shape: readonly [number, number, number, number], p: number, rng: Rng): tf.Tensor4D {
  return perImage(
    Array.from({ length: shape[0] }, () => (rng.next() < p ? 1 : 0)),
    shape,
  );
}

/** `mask * a + (1 - mask) * b`: exact for a 0/1 mask. */
function blend(mask: tf.Tensor4D, a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor4D {
  return tf.add(tf.mul(mask, a), tf.mul(tf.sub(1, mask), b));
}

function checkProbability(name: string, p: number): void {
  if (!(p >= 0 && p <= 1)) throw new OptionError(name, p, 'a probability in [0, 1]');
}

function checkRange(name: string, range: readonly [number, number], lo: number, hi: number, closedLow: boolean): void {
  const [a, b] = range;
  const lowOk = closedLow ? a >= lo : a > lo;
  if (!(range.length === 2 && lowOk && a <= b && b <= hi)) {
    throw new OptionError(
      name,
      range,
      `a [min, max] range with ${lo} ${closedLow ? '<=' : '<'} min <= max${hi < Infinity ? ` <= ${hi}` : ''}`,
    );
  }
}
