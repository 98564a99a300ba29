import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../core/errors.ts';
import { BatchNormalization, Conv2D } from './trainingLayers.ts';

/** Options of the shared conv frame encoder. */
export interface FrameEncoderOptions {
  /** Input frame shape `[height, width, channels]`. */
  inputShape: [number, number, number];
  /** Size of the feature vector the encoder outputs. Default 64. */
  featureSize?: number;
  /** Channels of the first conv block; each later block doubles them. Default 16. */
  width?: number;
  /** Number of stride-2 conv blocks. Default 3. */
  blocks?: number;
  /** Seed of the weight initialisers, so a random-init baseline is reproducible. */
  seed?: number;
  /**
   * How the last feature map becomes a vector: 'flatten' (default) keeps where things are, which temporal
   * tasks need (order depends on positions); 'average' (global average pooling) discards it.
   */
  pooling?: 'flatten' | 'average';
  /** Batch normalization after each conv ('batch', default), which makes the small encoder train far more reliably, or none. */
  normalization?: 'batch' | 'none';
}

/**
 * The small conv encoder shared by the video tasks: `blocks` x (3x3 conv stride 2, ReLU), flatten (or global
 * average pooling), a dense projection. Input `[batch, H, W, C]` floats in [0, 1]; output `[batch, featureSize]`.
 * Uses only ops whose gradients every backend of the ladder has (wasm with the replacement Conv2D gradient).
 *
 * @example
 * const encoder = buildFrameEncoder({ inputShape: [64, 64, 3], featureSize: 32, seed: 1 });
 * encoder.outputs[0].shape; // [null, 32]
 */
export function buildFrameEncoder(options: FrameEncoderOptions): tf.LayersModel {
  const {
    inputShape,
    featureSize = 64,
    width = 16,
    blocks = 3,
    seed = 0,
    pooling = 'flatten',
    normalization = 'batch',
  } = options;
  if (inputShape.length !== 3 || inputShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new OptionError('inputShape', inputShape, '[height, width, channels] of positive integers');
  }
  if (!Number.isInteger(featureSize) || featureSize < 1)
    throw new OptionError('featureSize', featureSize, 'a positive integer');
  if (!Number.isInteger(blocks) || blocks < 1 || 2 ** blocks > Math.min(inputShape[0], inputShape[1])) {
    throw new OptionError(
      'blocks',
      blocks,
      `an integer from 1 to log2(min(height, width)) = ${Math.floor(Math.log2(Math.min(inputShape[0], inputShape[1])))}`,
    );
  }
  const input = tf.input({ shape: inputShape, name: 'frame' });
  let x: tf.SymbolicTensor = input;
  for (let b = 0; b < blocks; b++) {
    x = new Conv2D({
      filters: width * 2 ** b,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      kernelInitializer: tf.initializers.heNormal({ seed: normalSeed(seed * 101 + b) }),
      useBias: normalization === 'none',
      name: `conv${b}`,
    }).apply(x) as tf.SymbolicTensor;
    if (normalization === 'batch') x = new BatchNormalization({ name: `bn${b}` }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.reLU({ name: `relu${b}` }).apply(x) as tf.SymbolicTensor;
  }
  if (pooling !== 'flatten' && pooling !== 'average')
    throw new OptionError('pooling', pooling, "'flatten' or 'average'");
  x = (
    pooling === 'flatten' ? tf.layers.flatten({ name: 'pool' }) : tf.layers.globalAveragePooling2d({ name: 'pool' })
  ).apply(x) as tf.SymbolicTensor;
  const features = tf.layers
    .dense({
      units: featureSize,
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 101 + 99 }),
      name: 'features',
    })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: features, name: 'frame_encoder' });
}

/**
 * A seed for tfjs's normal and truncated-normal initialisers (heNormal, glorotNormal...). They read a seed of 0 as
 * "no seed" and draw from Math.random, so a run with `--seed 0` initialised its first conv layer differently every
 * time; 0 is mapped to another fixed value. Uniform initialisers take 0 as a seed and need no mapping.
 */
export function normalSeed(seed: number): number {
  return seed === 0 ? 2 ** 31 - 1 : seed;
}
