import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { map, type OperatorFunction } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import type { Rng } from '../../core/rng.ts';
import { normalSeed } from '../../models/frameEncoder.ts';
import { LabChannels, labPart, lastConvBlock } from '../../models/labChannels.ts';
import { frameToFloat, type Frame } from '../../pipeline/frame.ts';
import { imageToLab, labToRgb } from '../../pipeline/labColour.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { locationAccuracy, rebalancedCrossEntropy } from '../losses/rebalancedCrossEntropy.ts';
import type { PretextTask, SamplerContext, TaskParts } from '../task.ts';
import { AbQuantizer, annealedMean } from './abBins.ts';

/** Pixels of the frame per side of one predicted location: targets and predictions are at 1/8 of the frame's size. */
export const OUTPUT_STRIDE = 8;
/** The paper's temperature of annealed-mean decoding. */
export const ANNEALED_TEMPERATURE = 0.38;

/** The shipped ab bins and their rebalancing weights (`colorizationBins.json`, written by `scripts/colorizationBins.ts`). */
export interface ColourBins {
  /** Bin side in ab units (10). */
  grid: number;
  /** What the empirical distribution was counted on. */
  source: { inputs: string[]; frames: number; pixels: number; size: number; fps: number };
  /** Options of the rebalancing. */
  sigma: number;
  lambda: number;
  /** The in-gamut bin centres `[a, b]`. */
  bins: [number, number][];
  /** Pixels of the source in each bin (hard nearest-bin assignment). */
  counts: number[];
  /** The smoothed empirical distribution over bins. */
  prior: number[];
  /** The rebalancing weight of each bin. */
  weights: number[];
}

let shipped: { bins: ColourBins; quantizer: AbQuantizer } | undefined;

/** The shipped bins, their quantizer and weights, read once. */
export function colourBins(): { bins: ColourBins; quantizer: AbQuantizer } {
  shipped ??= (() => {
    const bins = JSON.parse(readFileSync(new URL('./colorizationBins.json', import.meta.url), 'utf8')) as ColourBins;
    return { bins, quantizer: new AbQuantizer(bins.bins) };
  })();
  return shipped;
}

/** Rows and columns of the grid of predicted locations for frames of `itemShape` `[H, W, C]`. */
export function targetGrid(itemShape: readonly number[]): [number, number] {
  return [Math.ceil(itemShape[0]! / OUTPUT_STRIDE), Math.ceil(itemShape[1]! / OUTPUT_STRIDE)];
}

/**
 * Adds, for each location of a `rows` x `cols` grid over an `height` x `width` image, the mean of `encode(pixel)`
 * over the pixels it covers: `encode` adds a pixel's distribution over `classes` at an offset with a scale.
 */
export function cellDistributions(
  height: number,
  width: number,
  [rows, cols]: [number, number],
  classes: number,
  encode: (pixel: number, out: Float32Array, offset: number, scale: number) => void,
): Float32Array {
  const cellOf = (y: number, x: number) => Math.floor((y * rows) / height) * cols + Math.floor((x * cols) / width);
  const counts = new Float32Array(rows * cols);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) counts[cellOf(y, x)]!++;
  const out = new Float32Array(rows * cols * classes);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const cell = cellOf(y, x);
      encode(y * width + x, out, cell * classes, 1 / counts[cell]!);
    }
  }
  return out;
}

/**
 * A colour frame as one colorization sample: the input is the frame itself (`[H, W, 3]` floats in [0, 1]; the
 * model keeps only its lightness, in the graph), the label `[cells, Q]` the soft-encoded ab distribution of each
 * location (the mean over its 8 x 8 pixels of each pixel's encoding on its 5 nearest bins, Gaussian sigma 5).
 */
export function colorizationSample(frame: Frame, quantizer: AbQuantizer = colourBins().quantizer): Sample {
  const { a, b } = imageToLab(frame.data);
  const grid = targetGrid([frame.height, frame.width]);
  const label = cellDistributions(frame.height, frame.width, grid, quantizer.size, (i, out, offset, scale) =>
    quantizer.addSoft(a[i]!, b[i]!, out, offset, scale),
  );
  return { inputs: [frameToFloat(frame)], label, source: frame.source };
}

/** The sampler: every colour frame (a video frame or an image) becomes one sample. */
export function sampleColorization(quantizer?: AbQuantizer): OperatorFunction<Frame, Sample> {
  return map((frame: Frame) => colorizationSample(frame, quantizer));
}

/**
 * Checks a run's frames suit the colour tasks: RGB, sides a multiple of the output stride.
 *
 * @throws OptionError naming the flag to change.
 */
export function checkColourFrames(itemShape: readonly number[], task: string): void {
  const [height, width, channels] = itemShape;
  if (channels !== 3) throw new OptionError('--gray', itemShape, `left out: ${task} needs colour (RGB) frames`);
  if (!(height! % OUTPUT_STRIDE === 0 && width! % OUTPUT_STRIDE === 0 && height! >= OUTPUT_STRIDE))
    throw new OptionError('--width/--height', itemShape, `sides that are multiples of ${OUTPUT_STRIDE} for ${task}`);
}

/**
 * A per-location classifier on a feature map `[batch, h, w, channels]`: resized to the target grid (average pooling
 * when the map is finer, nearest upsampling when coarser, by a whole factor), then 1 x 1 convolutions: `hidden`
 * ReLU channels, then `classes` logits. Output `[batch, rows, cols, classes]`.
 *
 * @throws OptionError when the map and the grid are not a whole factor apart.
 */
export function locationHead(
  name: string,
  mapShape: readonly number[],
  grid: [number, number],
  classes: number,
  rng: Rng,
  hidden = 64,
): tf.Sequential {
  const [h, w, channels] = mapShape as [number, number, number];
  const seed = rng.int(2 ** 31);
  const layers: tf.layers.Layer[] = [];
  if (h > grid[0] || w > grid[1]) {
    if (h % grid[0] !== 0 || w % grid[1] !== 0 || h / grid[0] !== w / grid[1])
      throw new OptionError('encoder', [h, w], `a last conv map a whole factor finer than the ${grid} target grid`);
    layers.push(tf.layers.averagePooling2d({ poolSize: h / grid[0], inputShape: [h, w, channels] }));
  } else if (h < grid[0] || w < grid[1]) {
    if (grid[0] % h !== 0 || grid[1] % w !== 0 || grid[0] / h !== grid[1] / w)
      throw new OptionError('encoder', [h, w], `a last conv map a whole factor coarser than the ${grid} target grid`);
    layers.push(tf.layers.upSampling2d({ size: [grid[0] / h, grid[1] / w], inputShape: [h, w, channels] }));
  }
  const first = layers.length === 0 ? { inputShape: [h, w, channels] } : {};
  layers.push(
    tf.layers.conv2d({
      ...first,
      filters: hidden,
      kernelSize: 1,
      activation: 'relu',
      kernelInitializer: tf.initializers.heNormal({ seed: normalSeed(seed) }),
    }),
    tf.layers.conv2d({
      filters: classes,
      kernelSize: 1,
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
    }),
  );
  return tf.sequential({ name, layers });
}

/**
 * The representation of the colour tasks: RGB frames `[batch, H, W, 3]` in, each half's last conv block (the
 * features these tasks train) behind its Lab adapter, flattened and concatenated, out: `[batch, sum of h x w x c]`.
 * Colorization has one half (the shared encoder on L), split-brain two (L and ab).
 */
export function labConvRepresentation(
  halves: readonly { encoder: tf.LayersModel; part: 'l3' | 'ab' }[],
  name: string,
): tf.LayersModel {
  const [height, width] = halves[0]!.encoder.inputs[0]!.shape.slice(1) as [number, number];
  const input = tf.input({ shape: [height, width, 3], name: `${name}_rgb` });
  const features = halves.map(({ encoder, part }, k) => {
    const lab = new LabChannels({ part, name: `${name}_${part}` }).apply(input) as tf.SymbolicTensor;
    const map = lastConvBlock(encoder).apply(lab) as tf.SymbolicTensor;
    return tf.layers.flatten({ name: `${name}_flat${k}` }).apply(map) as tf.SymbolicTensor;
  });
  const output =
    features.length === 1
      ? features[0]!
      : (tf.layers.concatenate({ name: `${name}_features` }).apply(features) as tf.SymbolicTensor);
  return tf.model({ inputs: input, outputs: output, name });
}

/** ab logits `[batch, cells, Q]` of the lightness of RGB frames `[batch, H, W, 3]`: the shared encoder, then `head`. */
export function abLogits(encoder: tf.LayersModel, head: tf.LayersModel, rgb: tf.Tensor, training: boolean): tf.Tensor {
  return tf.tidy(() => {
    const features = lastConvBlock(encoder).apply(labPart(rgb, 'l3'), { training }) as tf.Tensor;
    const logits = head.apply(features, { training }) as tf.Tensor;
    return tf.reshape(logits, [logits.shape[0]!, -1, logits.shape[3]!]);
  });
}

/**
 * Colour images of `frames` as the model sees them: the frames' own lightness with the ab that annealed-mean
 * decoding (temperature `t`, the paper's 0.38) of the predicted bin distributions gives, upsampled bilinearly from
 * the location grid to the frame. Frames out, RGB.
 *
 * @example
 * const coloured = colorize(encoder, parts.head, frames); // write them with sharp to look at them
 */
export function colorize(
  encoder: tf.LayersModel,
  head: tf.LayersModel,
  frames: readonly Frame[],
  t = ANNEALED_TEMPERATURE,
): Frame[] {
  const { quantizer } = colourBins();
  const [height, width] = [frames[0]!.height, frames[0]!.width];
  const grid = targetGrid([height, width]);
  const pixels = new Float32Array(frames.length * height * width * 3);
  frames.forEach((f, k) => pixels.set(frameToFloat(f), k * height * width * 3));
  const probabilities = tf.tidy(() => {
    const logits = abLogits(encoder, head, tf.tensor4d(pixels, [frames.length, height, width, 3]), false);
    return tf.softmax(tf.slice(logits, [0, 0, 0], [-1, -1, quantizer.size])).dataSync();
  });
  const ab = annealedMean(probabilities, quantizer, t);
  const upsampled = tf.tidy(() =>
    tf.image.resizeBilinear(tf.tensor4d(ab, [frames.length, grid[0], grid[1], 2]), [height, width], false).dataSync(),
  );
  return frames.map((frame, k) => {
    const { l } = imageToLab(frame.data);
    const data = new Uint8Array(height * width * 3);
    for (let i = 0; i < height * width; i++) {
      const at = (k * height * width + i) * 2;
      const rgb = labToRgb(l[i]!, upsampled[at]!, upsampled[at + 1]!);
      for (let c = 0; c < 3; c++) data[3 * i + c] = Math.round(rgb[c]! * 255);
    }
    return { ...frame, data };
  });
}

/**
 * Colorization (Zhang, Isola and Efros, ECCV 2016, "Colorful Image Colorization"): predict the colour of an image
 * from its lightness. Each frame goes to CIE Lab; the network sees L only and classifies the ab colour of each
 * location among the in-gamut bins of a 10-unit ab grid, trained with cross-entropy against soft-encoded targets
 * and class rebalancing; annealed-mean decoding (`colorize`, T = 0.38) turns predictions into colour images.
 *
 * The paper: a VGG-style fully convolutional network on 224 x 224 ImageNet L, ab predicted at 56 x 56 (1/4) over
 * 313 bins, targets soft-encoded on the 5 nearest bins (Gaussian sigma 5), each location's loss weighted by
 * w ∝ ((1 - lambda) p~ + lambda / Q)^-1 of its target's bin, p~ the ImageNet ab distribution smoothed by a Gaussian
 * (sigma 5), lambda 1/2; as self-supervision, the network's features are probed for classification.
 *
 * This: the same loss, soft encoding, rebalancing (lambda 0.5, sigma 5) and decoding. Differences, and why:
 * - the bins are the 10-unit cells some sRGB colour falls in, 261 of them (`inGamutBins`), not the paper's 313
 *   (the paper ships its 313 centres without the computation behind them, which may count cells the gamut only
 *   touches; these are reproducible from the sRGB cube); the empirical distribution is counted on the shared real
 *   videos, not ImageNet. Both are written by `scripts/colorizationBins.ts` into `colorizationBins.json`;
 * - the network is the project's small shared encoder, which takes `[H, W, 3]` frames like every task of a mixed
 *   run: it gets L / 100 replicated to its three channels (a `LabChannels` layer in the graph, so the sample and
 *   the evaluated representation are the plain RGB frame, and the encoder never sees colour);
 * - the classifier (`locationHead`: 1 x 1 convolutions, 64 ReLU channels, then Q logits) reads the encoder's last
 *   conv block, so ab is predicted at 1/8 of the frame (8 x 8 for 64 x 64 frames, 4 x 4 for 32 x 32), each
 *   location's target the mean soft encoding of its 8 x 8 pixels, where the paper predicts at 1/4 with a deep
 *   decoder; the encoder's dense `features` layer gets no gradient from this task (it stays at its initial
 *   weights unless another task of the run trains it);
 * - the representation for evaluation (`TaskParts.representation`) is what the task trains, the last conv block
 *   behind the Lab adapter, flattened (`labConvRepresentation`: RGB frames in; 1024 values for 32 x 32 frames and
 *   the default encoder), as the paper probes conv layers; the encoder's dense output, which this task leaves at
 *   its initial weights, is no representation of it.
 *
 * @example
 * const samples$ = frames$.pipe(colorization.sampler({ rng: new Rng(1) }));
 */
export const colorization = {
  name: 'colorization',
  family: 'image-context',
  paper: 'Zhang, Isola, Efros. Colorful Image Colorization. ECCV 2016',
  reads: 'images',
  configure(setup) {
    checkColourFrames(setup.itemShape, 'colorization');
    return this;
  },
  // Nothing random: every frame gives its own target.
  sampler: (_context: SamplerContext) => sampleColorization(),
  inputShapes: (itemShape) => [[itemShape[0]!, itemShape[1]!, 3]],
  labelShape: (itemShape) => {
    const [rows, cols] = targetGrid(itemShape);
    return [rows * cols, colourBins().quantizer.size];
  },
  build(encoder, rng): TaskParts {
    const shape = encoder.inputs[0]!.shape.slice(1) as number[];
    const mapShape = lastConvBlock(encoder).outputs[0]!.shape.slice(1) as number[];
    const head = locationHead('colorization_head', mapShape, targetGrid(shape), colourBins().quantizer.size, rng);
    return { head, representation: labConvRepresentation([{ encoder, part: 'l3' }], 'colorization_representation') };
  },
  forward: (encoder, { head }, inputs, training) => abLogits(encoder, head, inputs[0]!, training),
  /** labels `[batch, cells, Q]` ab distributions, logits the same: rebalanced cross-entropy. */
  loss: (labels, logits) => rebalancedCrossEntropy(labels, logits, colourBins().bins.weights),
  metric: (labels, logits) => locationAccuracy(labels, logits),
} satisfies PretextTask<Frame>;
