import * as tf from '@tensorflow/tfjs';
import { bufferCount, filter, pipe, type OperatorFunction } from 'rxjs';
import { OptionError } from '../core/errors.ts';
import type { Sample } from './sample.ts';

/** A batch as tensors. Whoever receives it disposes it (`disposeBatch`). */
export interface TensorBatch {
  /** One tensor per model input, `[batch, ...inputShape]`. */
  inputs: tf.Tensor[];
  /** `[batch, ...labelShape]`. */
  labels: tf.Tensor;
}

/** Groups samples into arrays of exactly `size`; a short tail at completion is dropped so every step sees one shape. */
export function batchSamples(size: number): OperatorFunction<Sample, Sample[]> {
  if (!Number.isInteger(size) || size < 1) throw new OptionError('--batch', size, 'a positive integer');
  return pipe(
    bufferCount(size),
    filter((batch) => batch.length === size),
  );
}

/**
 * Stacks plain samples into tensors. `inputShapes` and `labelShape` are per sample, without the batch axis;
 * a sample of another size is a bug in its sampler and throws naming the input.
 */
export function collate(samples: readonly Sample[], inputShapes: number[][], labelShape: number[]): TensorBatch {
  const n = samples.length;
  const stack = (pick: (s: Sample) => Float32Array, shape: number[], what: string): tf.Tensor => {
    const size = shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n * size);
    samples.forEach((s, i) => {
      const values = pick(s);
      if (values.length !== size) {
        throw new OptionError(
          what,
          `${values.length} values`,
          `${size} values (shape [${shape}]) from ${s.source ?? 'the sampler'}`,
        );
      }
      out.set(values, i * size);
    });
    return tf.tensor(out, [n, ...shape]);
  };
  return {
    inputs: inputShapes.map((shape, k) => stack((s) => s.inputs[k]!, shape, `input ${k}`)),
    labels: stack((s) => s.label, labelShape, 'label'),
  };
}

/** Disposes every tensor of a batch. */
export function disposeBatch(batch: TensorBatch): void {
  tf.dispose([...batch.inputs, batch.labels]);
}
