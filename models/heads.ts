import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../core/errors.ts';
import type { Rng } from '../core/rng.ts';
import { normalSeed } from './frameEncoder.ts';
import { BatchNormalization } from './trainingLayers.ts';

/** One dense block of an MLP head. */
export interface HeadBlock {
  units: number;
  /** 'relu' blocks are He-initialised, linear ones Glorot-initialised. Default linear. */
  activation?: 'relu' | 'linear';
  /** Default true. */
  useBias?: boolean;
  /**
   * Batch normalization between the dense layer and its activation (the dense layer then has no bias), as the
   * projectors and predictors of BYOL and Barlow Twins have. Default false.
   */
  batchNorm?: boolean;
}

/**
 * An MLP head assembled from a block spec, as lightly's `ProjectionHead(blocks)` assembles its heads: dense layers
 * in order, seeded from one draw of `rng` (block k uses seed + k), He-normal init for ReLU blocks and Glorot-uniform
 * for linear ones. Input `[batch, inputSize]`, output `[batch, last block's units]`.
 *
 * @example
 * const head = mlpHead('order_head', 3 * 64, [{ units: 64, activation: 'relu' }, { units: 1 }], new Rng(0));
 */
export function mlpHead(name: string, inputSize: number, blocks: readonly HeadBlock[], rng: Rng): tf.Sequential {
  if (!Number.isInteger(inputSize) || inputSize < 1)
    throw new OptionError('inputSize', inputSize, 'a positive integer');
  if (blocks.length === 0) throw new OptionError('blocks', blocks, 'at least one block');
  const seed = rng.int(2 ** 31);
  return tf.sequential({
    name,
    layers: blocks.flatMap((block, k) => {
      if (!Number.isInteger(block.units) || block.units < 1) {
        throw new OptionError(`blocks[${k}].units`, block.units, 'a positive integer');
      }
      const relu = block.activation === 'relu';
      const dense = tf.layers.dense({
        ...(k === 0 ? { inputShape: [inputSize] } : {}),
        units: block.units,
        ...(relu && !block.batchNorm ? { activation: 'relu' } : {}),
        ...(block.useBias === false || block.batchNorm ? { useBias: false } : {}),
        kernelInitializer: relu
          ? tf.initializers.heNormal({ seed: normalSeed(seed + k) })
          : tf.initializers.glorotUniform({ seed: seed + k }),
      });
      if (!block.batchNorm) return [dense];
      return [dense, new BatchNormalization({}), ...(relu ? [tf.layers.reLU()] : [])];
    }),
  });
}
