import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';
import { accuracy } from './accuracy.ts';
import type { LabelledItems } from './linearProbe.ts';

/** Options of end-to-end classifier training (supervised baseline and fine-tuning). */
export interface TrainClassifierOptions {
  /** Passes over the training items. Default 10. */
  epochs?: number;
  /** Gradient steps at least, whatever the epochs (a few labels make short epochs). Default 0. */
  minSteps?: number;
  /** Items per step. Default 32. */
  batchSize?: number;
  /** Adam learning rate. Default 1e-3. */
  learningRate?: number;
  /** Seed of the head's initial weights and of the order of items. Default 0. */
  seed?: number;
  /**
   * Held-out part of the training labels: the weights of the epoch that scores best on it are kept (early
   * stopping). Absent: the weights after the last step.
   */
  validation?: LabelledItems;
}

/** A trained classifier: the encoder (trained in place) and its linear head. */
export interface TrainedClassifier {
  encoder: tf.LayersModel;
  /** `[batch, features]` -> `[batch, classes]` logits. */
  head: tf.LayersModel;
  /** The epoch whose weights were kept (1-based). */
  epoch: number;
  /** Validation accuracy of that epoch, NaN without validation items. */
  validationAccuracy: number;
}

/**
 * Trains `encoder` and a new linear layer on top with softmax cross-entropy (mini-batch Adam): the supervised
 * baseline when `encoder` is at random init, fine-tuning when it is pretrained. The encoder's weights change in
 * place (pass a copy to keep the original). Batch normalization runs in training mode during steps and in
 * inference mode for validation.
 *
 * @example
 * const { head } = await trainClassifier(await randomInitLike(encoder), train, 10, { epochs: 5 });
 */
export async function trainClassifier(
  encoder: tf.LayersModel,
  train: LabelledItems,
  classes: number,
  options: TrainClassifierOptions = {},
): Promise<TrainedClassifier> {
  const { epochs = 10, minSteps = 0, batchSize = 32, learningRate = 1e-3, seed = 0, validation } = options;
  if (!Number.isInteger(epochs) || epochs < 1) throw new OptionError('epochs', epochs, 'a positive integer');
  if (train.items.length === 0) throw new OptionError('train', '0 items', 'at least one labelled item');
  const rng = new Rng(seed);
  const featureSize = encoder.outputs[0]!.shape.slice(1).reduce((a, b) => (a ?? 1) * (b ?? 1), 1)!;
  const head = tf.sequential({
    name: 'classifier_head',
    layers: [
      tf.layers.dense({
        inputShape: [featureSize],
        units: classes,
        kernelInitializer: tf.initializers.glorotUniform({ seed }),
        name: 'logits',
      }),
    ],
  });
  const variables = [...encoder.trainableWeights, ...head.trainableWeights].map((w) => w.read() as tf.Variable);
  const optimizer = tf.train.adam(learningRate);
  const stepsPerEpoch = Math.ceil(train.items.length / batchSize);
  const totalEpochs = Math.max(epochs, Math.ceil(minSteps / stepsPerEpoch));
  let best = { epoch: totalEpochs, validationAccuracy: NaN, weights: [] as tf.Tensor[] };
  try {
    for (let epoch = 1; epoch <= totalEpochs; epoch++) {
      const order = rng.shuffle(train.items.map((_, i) => i));
      for (let start = 0; start < order.length; start += batchSize) {
        const batch = order.slice(start, start + batchSize);
        runStep(encoder, head, optimizer, variables, train, batch, classes);
        await tf.nextFrame();
      }
      if (validation && validation.items.length > 0) {
        const score = accuracy(predictClasses(encoder, head, validation.items, batchSize), validation.labels);
        if (!(score <= best.validationAccuracy)) {
          tf.dispose(best.weights);
          best = { epoch, validationAccuracy: score, weights: snapshot(encoder, head) };
        }
      }
    }
    if (best.weights.length > 0) restore(encoder, head, best.weights);
    return { encoder, head, epoch: best.epoch, validationAccuracy: best.validationAccuracy };
  } finally {
    tf.dispose(best.weights);
    optimizer.dispose();
  }
}

/** One Adam step of cross-entropy on the items at `batch`. */
function runStep(
  encoder: tf.LayersModel,
  head: tf.LayersModel,
  optimizer: tf.Optimizer,
  variables: tf.Variable[],
  data: LabelledItems,
  batch: number[],
  classes: number,
): void {
  tf.tidy(() => {
    const x = stack(encoder, data.items, batch);
    const y = tf.oneHot(
      tf.tensor1d(
        batch.map((i) => data.labels[i]!),
        'int32',
      ),
      classes,
    );
    optimizer.minimize(
      () => {
        const features = encoder.apply(x, { training: true }) as tf.Tensor;
        const logits = head.apply(tf.reshape(features, [batch.length, -1]), { training: true }) as tf.Tensor;
        return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
      },
      false,
      variables,
    );
  });
}

/** Predicted classes of `items` by `head` over `encoder`'s features, in inference mode, `batchSize` at a time. */
export function predictClasses(
  encoder: tf.LayersModel,
  head: tf.LayersModel,
  items: readonly Float32Array[],
  batchSize = 64,
): number[] {
  const out: number[] = [];
  const all = items.map((_, i) => i);
  for (let start = 0; start < items.length; start += batchSize) {
    const batch = all.slice(start, start + batchSize);
    const predicted = tf.tidy(() => {
      const features = encoder.predict(stack(encoder, items, batch)) as tf.Tensor;
      return tf.argMax(head.predict(tf.reshape(features, [batch.length, -1])) as tf.Tensor, 1);
    });
    out.push(...predicted.dataSync());
    predicted.dispose();
  }
  return out;
}

/** The items at `batch` as one input tensor `[batch, ...encoder input shape]`. */
function stack(encoder: tf.LayersModel, items: readonly Float32Array[], batch: number[]): tf.Tensor {
  const shape = encoder.inputs[0]!.shape.slice(1) as number[];
  const size = shape.reduce((a, b) => a * b, 1);
  const flat = new Float32Array(batch.length * size);
  batch.forEach((i, row) => flat.set(items[i]!, row * size));
  return tf.tensor(flat, [batch.length, ...shape]);
}

/** Copies of every weight (batch-norm statistics included) of the encoder and the head. */
function snapshot(encoder: tf.LayersModel, head: tf.LayersModel): tf.Tensor[] {
  return [...encoder.getWeights(), ...head.getWeights()].map((w) => w.clone());
}

function restore(encoder: tf.LayersModel, head: tf.LayersModel, weights: tf.Tensor[]): void {
  const split = encoder.getWeights().length;
  encoder.setWeights(weights.slice(0, split));
  head.setWeights(weights.slice(split));
}
