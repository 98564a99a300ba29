import * as tf from '@tensorflow/tfjs';
import { selectBackend, type BackendChoice } from '../models/backend.ts';
import { buildFrameEncoder, type FrameEncoderOptions } from '../models/frameEncoder.ts';
import { DEFAULT_ENCODER } from './trainStep.ts';

/** One row of the parity bench: how far a backend's training step is from the plain-JS cpu backend's. */
export interface ParityRow {
  /** The backend compared. */
  backend: string;
  /** Always `cpu`: the reference every backend is held to. */
  reference: 'cpu';
  /** Samples in the compared batch. */
  batch: number;
  /** |loss - loss on cpu|. */
  lossDiff: number;
  /** Largest |output - output on cpu| over the batch's logits. */
  outputMaxDiff: number;
  /** Largest |gradient - gradient on cpu| over every trainable weight. */
  gradMaxDiff: number;
  /** gradMaxDiff over the largest |gradient on cpu|: the difference relative to the gradients' scale. */
  gradRelDiff: number;
  /** Whether outputs and gradients are within 1e-4 of cpu (gradients relative to their scale). */
  within1e4: boolean;
}

/** What one backend computed for the step. */
interface StepValues {
  loss: number;
  output: Float32Array;
  grads: Float32Array[];
}

/**
 * The training-mode forward pass, loss and weight gradients of the default frame encoder with a dense head, on the
 * chosen backend and on `cpu`, from the same weights and batch; the largest differences. The `train-step` bench says
 * how fast a backend is, this one that it computes the same step.
 *
 * @example
 * const [row] = await benchBackendParity({ backend: 'wasm', batch: 4 });
 * row.within1e4; // true
 */
export async function benchBackendParity(
  options: { backend?: BackendChoice; batch?: number; encoder?: FrameEncoderOptions } = {},
): Promise<ParityRow[]> {
  const { batch = 8 } = options;
  const encoder = options.encoder ?? DEFAULT_ENCODER;
  await selectBackend({ backend: 'cpu', log: () => {} });
  const reference = await stepValues(encoder, batch);
  const info = await selectBackend({ backend: options.backend });
  const values = await stepValues(encoder, batch, reference.weights);
  let gradMaxDiff = 0;
  let gradScale = 0;
  values.grads.forEach((g, i) => {
    gradMaxDiff = Math.max(gradMaxDiff, maxAbsDiff(g, reference.grads[i]!));
    gradScale = Math.max(gradScale, maxAbs(reference.grads[i]!));
  });
  const outputMaxDiff = maxAbsDiff(values.output, reference.output);
  const gradRelDiff = gradScale > 0 ? gradMaxDiff / gradScale : gradMaxDiff;
  return [
    {
      backend: info.name,
      reference: 'cpu',
      batch,
      lossDiff: Math.abs(values.loss - reference.loss),
      outputMaxDiff,
      gradMaxDiff,
      gradRelDiff,
      within1e4: outputMaxDiff <= 1e-4 && gradRelDiff <= 1e-4,
    },
  ];
}

/** Builds the model on the active backend (with `weights` when given), runs one training-mode step, reads it back. */
async function stepValues(
  encoderOptions: FrameEncoderOptions,
  batch: number,
  weights?: Float32Array[],
): Promise<StepValues & { weights: Float32Array[] }> {
  const encoder = buildFrameEncoder(encoderOptions);
  const head = tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) });
  const model = tf.model({ inputs: encoder.inputs, outputs: head.apply(encoder.outputs[0]) as tf.SymbolicTensor });
  if (weights) {
    const tensors = model.getWeights().map((w, i) => tf.tensor(weights[i]!, w.shape));
    model.setWeights(tensors);
    tf.dispose(tensors);
  }
  const x = tf.randomUniform([batch, ...encoderOptions.inputShape], 0, 1, 'float32', 3);
  const labels = tf.tidy(() =>
    tf.oneHot(
      tf.tensor1d(
        Int32Array.from({ length: batch }, (_, i) => i % 10),
        'int32',
      ),
      10,
    ),
  );
  try {
    let output: tf.Tensor | undefined;
    const { value, grads } = tf.variableGrads(
      () => {
        output = tf.keep(model.apply(x, { training: true }) as tf.Tensor);
        return tf.losses.softmaxCrossEntropy(labels, output) as tf.Scalar;
      },
      model.trainableWeights.map((w) => w.read() as tf.Variable),
    );
    const names = model.trainableWeights.map((w) => (w.read() as tf.Variable).name);
    const gradValues = await Promise.all(names.map(async (n) => (await grads[n]!.data()) as Float32Array));
    const result = {
      loss: (await value.data())[0]!,
      output: (await output!.data()) as Float32Array,
      grads: gradValues,
      weights: await Promise.all(model.getWeights().map(async (w) => (await w.data()) as Float32Array)),
    };
    tf.dispose([value, output!, ...Object.values(grads)]);
    return result;
  } finally {
    tf.dispose([x, labels]);
    model.dispose();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

function maxAbs(a: Float32Array): number {
  let max = 0;
  for (const v of a) max = Math.max(max, Math.abs(v));
  return max;
}
