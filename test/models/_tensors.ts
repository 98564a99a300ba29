// Shared by the backend and training-layer tests: seeded tensors, a max difference, and running on a backend.
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../core/rng.ts';

/** A tensor of `shape` drawn from N(shift, scale²) by a seeded generator. */
export function randomTensor(shape: number[], seed: number, scale = 1, shift = 0): tf.Tensor {
  const rng = new Rng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: size }, () => shift + scale * rng.normal()),
    shape,
  );
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** Runs `fn` on `backend` and returns its outputs as plain arrays, restoring the previous backend. */
export async function on(backend: string, fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  const previous = tf.getBackend();
  await tf.setBackend(backend);
  try {
    const outs = fn();
    const data = await Promise.all(outs.map(async (t) => (await t.data()) as Float32Array));
    tf.dispose(outs);
    return data;
  } finally {
    await tf.setBackend(previous);
  }
}
