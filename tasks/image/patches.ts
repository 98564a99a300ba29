import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../../core/errors.ts';
import type { Rng } from '../../core/rng.ts';
import { normalSeed } from '../../models/frameEncoder.ts';

/**
 * What the patch tasks (`relative-position`, `jigsaw`) and the reconstruction tasks (`autoencoder`, `inpainting`)
 * share: the shared encoder's conv blocks run on patches smaller than the frame, and a decoder back to the frame.
 *
 * The patch problem: the shared encoder has one input shape (the run's frame), and its dense output layer reads the
 * flattened last feature map of a whole frame, so a patch cannot go through the whole encoder. Patches go through
 * the encoder's own conv blocks instead (every layer before its `pool` layer, applied to the patch tensor: the same
 * layer objects, so the same weights, the weights `evaluate` reads at `--layer relu2` or `pool`), and are then
 * flattened at patch size. Convolutions do not care about the input's height and width, so nothing is resized; the
 * encoder's dense `features` layer is not trained by these tasks.
 */

/** The encoder's layers that run on any input size: every layer after its input and before `pool`. */
export function convLayers(encoder: tf.LayersModel): tf.layers.Layer[] {
  const pool = encoder.layers.findIndex((layer) => layer.name === 'pool');
  if (pool < 1) {
    throw new OptionError(
      'encoder',
      encoder.name,
      "a frame encoder with conv blocks before a layer named 'pool' (buildFrameEncoder's)",
    );
  }
  // Layer 0 is the input layer.
  return encoder.layers.slice(1, pool);
}

/**
 * The encoder's conv blocks applied to `patches` `[n, h, w, C]` of any size, flattened: `[n, features]`. The layers
 * are the encoder's own (batch normalization in training mode when `training`), so gradients reach its weights.
 */
export function patchFeatures(encoder: tf.LayersModel, patches: tf.Tensor4D, training: boolean): tf.Tensor2D {
  return tf.tidy(() => {
    let x: tf.Tensor = patches;
    for (const layer of convLayers(encoder)) x = layer.apply(x, { training }) as tf.Tensor;
    return tf.reshape(x, [x.shape[0]!, -1]);
  });
}

/** Size of {@link patchFeatures}'s output for a `height` x `width` patch: stride-2 'same' convs halve, rounding up. */
export function patchFeatureSize(encoder: tf.LayersModel, height: number, width: number): number {
  let [h, w, c] = [height, width, 0];
  for (const layer of convLayers(encoder)) {
    if (layer.getClassName() === 'Conv2D') {
      const config = layer.getConfig() as { strides: number | number[]; filters: number };
      const [sy, sx] = Array.isArray(config.strides) ? config.strides : [config.strides, config.strides];
      [h, w, c] = [Math.ceil(h / sy!), Math.ceil(w / sx!), config.filters];
    }
  }
  return h * w * c;
}

/** The frame shape `[height, width, channels]` the encoder reads. */
export function frameShapeOf(encoder: tf.LayersModel): [number, number, number] {
  const [, h, w, c] = encoder.inputs[0]!.shape;
  return [h!, w!, c!];
}

/**
 * A decoder from the encoder's features back to a frame: a dense layer (ReLU) to a `ceil(H/2^k)` x `ceil(W/2^k)`
 * x `channels[0]` map, `k` = `channels.length` stride-2 3x3 transposed convolutions (ReLU), a 3x3 convolution to
 * the frame's channels (sigmoid, so pixels in [0, 1]), cropped to `[H, W, C]` (the mirror of the frame encoder).
 */
export function frameDecoder(
  name: string,
  featureSize: number,
  frame: readonly [number, number, number],
  channels: readonly number[],
  rng: Rng,
): tf.LayersModel {
  const [height, width, depth] = frame;
  const scale = 2 ** channels.length;
  const [h0, w0] = [Math.ceil(height / scale), Math.ceil(width / scale)];
  const seed = rng.int(2 ** 31);
  const input = tf.input({ shape: [featureSize], name: `${name}_features` });
  let x = tf.layers
    .dense({
      units: h0 * w0 * channels[0]!,
      activation: 'relu',
      kernelInitializer: tf.initializers.heNormal({ seed: normalSeed(seed) }),
      name: `${name}_dense`,
    })
    .apply(input) as tf.SymbolicTensor;
  x = tf.layers.reshape({ targetShape: [h0, w0, channels[0]!], name: `${name}_map` }).apply(x) as tf.SymbolicTensor;
  channels.forEach((filters, k) => {
    x = tf.layers
      .conv2dTranspose({
        filters,
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: tf.initializers.heNormal({ seed: normalSeed(seed + k + 1) }),
        name: `${name}_up${k}`,
      })
      .apply(x) as tf.SymbolicTensor;
  });
  x = tf.layers
    .conv2d({
      filters: depth,
      kernelSize: 3,
      padding: 'same',
      activation: 'sigmoid',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 99 }),
      name: `${name}_pixels`,
    })
    .apply(x) as tf.SymbolicTensor;
  const [extraH, extraW] = [h0 * scale - height, w0 * scale - width];
  if (extraH > 0 || extraW > 0) {
    x = tf.layers
      .cropping2D({
        cropping: [
          [extraH >> 1, extraH - (extraH >> 1)],
          [extraW >> 1, extraW - (extraW >> 1)],
        ],
        name: `${name}_crop`,
      })
      .apply(x) as tf.SymbolicTensor;
  }
  return tf.model({ inputs: input, outputs: x, name });
}

/**
 * Mean squared error of `predictions` against `targets` (both `[batch, H, W, C]`) over the pixels where `mask`
 * (`[batch, H, W, 1]`, 1 or 0) is 1, and a fraction of explained variance beside it: 1 - that error / the error of
 * predicting, at each pixel, the batch's mean there (over the masked items). 0 is the mean image; 1 is exact.
 */
export function maskedReconstruction(
  targets: tf.Tensor,
  predictions: tf.Tensor,
  mask: tf.Tensor,
): { mse: tf.Scalar; explained: tf.Scalar } {
  return tf.tidy(() => {
    const channels = targets.shape[3]!;
    const weight = tf.mul(mask, tf.onesLike(targets));
    const count = tf.maximum(tf.sum(weight), 1);
    const sse = tf.sum(tf.mul(weight, tf.square(tf.sub(predictions, targets))));
    const mse = tf.div(sse, count) as tf.Scalar;
    const perPixel = tf.div(tf.sum(tf.mul(weight, targets), 0), tf.maximum(tf.sum(weight, 0), 1e-6));
    const spread = tf.sum(tf.mul(weight, tf.square(tf.sub(targets, perPixel))));
    const explained = tf.sub(1, tf.div(sse, tf.maximum(spread, 1e-6 * channels))) as tf.Scalar;
    return { mse, explained };
  });
}

/** Copies the `height` x `width` window at (`top`, `left`) of an HWC image `pixels` of `frameWidth` into `out`. */
export function cropInto(
  pixels: Float32Array,
  frameWidth: number,
  channels: number,
  window: { top: number; left: number; height: number; width: number },
  out: Float32Array,
): Float32Array {
  const { top, left, height, width } = window;
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * frameWidth + left) * channels;
    out.set(pixels.subarray(from, from + width * channels), y * width * channels);
  }
  return out;
}

/** The decoder's channels: the encoder's conv blocks in reverse (16/32/64 -> 64/32/16). */
export function decoderChannels(encoder: tf.LayersModel): number[] {
  return convLayers(encoder)
    .filter((layer) => layer.getClassName() === 'Conv2D')
    .map((layer) => (layer.getConfig() as { filters: number }).filters)
    .reverse();
}

/** A 3 x 3 grid of patches in a frame: the cells, the patch in each cell, the gap a cell leaves around its patch. */
export interface PatchGrid {
  /** Cell size `[height, width]`: a third of the frame's, rounded down. */
  readonly cell: readonly [number, number];
  /** Patch size: the cell less the gap. */
  readonly patch: readonly [number, number];
  /** The cell's margin around its patch, per axis: where the patch may sit (jitter) and the space between patches. */
  readonly gap: readonly [number, number];
}

/**
 * The 3 x 3 grid of a `height` x `width` frame whose patches leave `gapFraction` of each cell free (at least one
 * pixel).
 *
 * @throws OptionError naming `option` when the frame is too small for patches of at least 2 x 2 pixels.
 */
export function patchGrid(height: number, width: number, gapFraction: number, option: string): PatchGrid {
  const cell = [Math.floor(height / 3), Math.floor(width / 3)] as const;
  const gap = cell.map((c) => Math.max(1, Math.round(c * gapFraction))) as [number, number];
  const patch = [cell[0] - gap[0], cell[1] - gap[1]] as const;
  if (patch[0] < 2 || patch[1] < 2) {
    throw new OptionError(
      '--width/--height',
      [height, width],
      `frames of at least 9 x 9 pixels for ${option} (3 x 3 cells of patches of at least 2 x 2)`,
    );
  }
  return { cell, patch, gap };
}

/** `patch` normalized on its own: mean 0 and standard deviation 1 over all its values (in place). */
export function normalizePatch(patch: Float32Array): Float32Array {
  let mean = 0;
  for (const v of patch) mean += v;
  mean /= patch.length;
  let variance = 0;
  for (const v of patch) variance += (v - mean) ** 2;
  const scale = 1 / Math.sqrt(variance / patch.length + 1e-4);
  for (let i = 0; i < patch.length; i++) patch[i] = (patch[i]! - mean) * scale;
  return patch;
}
