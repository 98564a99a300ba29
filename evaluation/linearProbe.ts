import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';

/** Labelled items for a probe: each item a Float32Array of the encoder's input shape, values in [0, 1]. */
export interface LabelledItems {
  items: Float32Array[];
  labels: number[];
}

/** Options of the linear probe. */
export interface LinearProbeOptions {
  /** Full-batch Adam iterations of the logistic regression. Default 300. */
  iterations?: number;
  /** L2 penalty on the weights. Default 1e-3. */
  l2?: number;
  /** Items embedded per forward pass. Default 64. */
  batchSize?: number;
  /** Neighbours of the kNN classifier reported beside the linear one. Default 5. */
  k?: number;
}

/** What a probe reports for one encoder. */
export interface ProbeResult {
  /** Held-out accuracy of the logistic-regression head on frozen features. */
  accuracy: number;
  /** Held-out accuracy of a cosine kNN classifier on the same features. */
  knnAccuracy: number;
  trainCount: number;
  testCount: number;
}

/** Frozen features of `items`, `[count, featureSize]`, computed in batches. */
export function embed(encoder: tf.LayersModel, items: Float32Array[], batchSize = 64): tf.Tensor2D {
  const shape = encoder.inputs[0]!.shape.slice(1) as number[];
  const size = shape.reduce((a, b) => a * b, 1);
  const parts: tf.Tensor2D[] = [];
  for (let start = 0; start < items.length; start += batchSize) {
    const chunk = items.slice(start, start + batchSize);
    parts.push(
      tf.tidy(() => {
        const flat = new Float32Array(chunk.length * size);
        chunk.forEach((item, i) => {
          if (item.length !== size)
            throw new OptionError('probe item', `${item.length} values`, `${size} values (encoder input [${shape}])`);
          flat.set(item, i * size);
        });
        return encoder.predict(tf.tensor(flat, [chunk.length, ...shape])) as tf.Tensor2D;
      }),
    );
  }
  const out = tf.concat(parts) as tf.Tensor2D;
  tf.dispose(parts);
  return out;
}

/**
 * Linear evaluation of a frozen encoder: embed train and test items, standardize features with the train
 * statistics, fit a multinomial logistic regression (softmax + L2, full-batch Adam) on train, report accuracy
 * on test; plus a cosine kNN accuracy on the same features.
 */
export function linearProbe(
  encoder: tf.LayersModel,
  train: LabelledItems,
  test: LabelledItems,
  options: LinearProbeOptions = {},
): ProbeResult {
  const { iterations = 300, l2 = 1e-3, batchSize = 64, k = 5 } = options;
  if (train.items.length === 0 || test.items.length === 0) {
    throw new OptionError(
      'probe data',
      `${train.items.length} train / ${test.items.length} test items`,
      'at least one item in each split',
    );
  }
  const classes = Math.max(...train.labels, ...test.labels) + 1;
  const trainX = embed(encoder, train.items, batchSize);
  const testX = embed(encoder, test.items, batchSize);
  try {
    const accuracy = fitLogisticRegression(trainX, train.labels, testX, test.labels, classes, iterations, l2);
    const knnAccuracy = knnClassify(trainX, train.labels, testX, test.labels, k);
    return { accuracy, knnAccuracy, trainCount: train.items.length, testCount: test.items.length };
  } finally {
    tf.dispose([trainX, testX]);
  }
}

function fitLogisticRegression(
  trainX: tf.Tensor2D,
  trainY: number[],
  testX: tf.Tensor2D,
  testY: number[],
  classes: number,
  iterations: number,
  l2: number,
): number {
  const dim = trainX.shape[1];
  const w = tf.variable(tf.zeros([dim, classes]));
  const b = tf.variable(tf.zeros([classes]));
  const optimizer = tf.train.adam(0.05);
  try {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(trainX, 0);
      const std = tf.sqrt(tf.add(variance, 1e-6));
      const xTrain = tf.div(tf.sub(trainX, mean), std);
      const xTest = tf.div(tf.sub(testX, mean), std);
      const yTrain = tf.oneHot(tf.tensor1d(trainY, 'int32'), classes);
      for (let i = 0; i < iterations; i++) {
        optimizer.minimize(() => {
          const logits = tf.add(tf.matMul(xTrain, w), b);
          return tf.add(tf.losses.softmaxCrossEntropy(yTrain, logits), tf.mul(l2, tf.sum(tf.square(w)))) as tf.Scalar;
        });
      }
      const predicted = tf.argMax(tf.add(tf.matMul(xTest, w), b), 1).dataSync();
      return accuracyOf(predicted, testY);
    });
  } finally {
    tf.dispose([w, b]);
    optimizer.dispose();
  }
}

function knnClassify(trainX: tf.Tensor2D, trainY: number[], testX: tf.Tensor2D, testY: number[], k: number): number {
  const kk = Math.min(k, trainY.length);
  const neighbours = tf.tidy(() => {
    const norm = (x: tf.Tensor2D) => tf.div(x, tf.add(tf.norm(x, 'euclidean', 1, true), 1e-8));
    const similarity = tf.matMul(norm(testX), norm(trainX), false, true);
    return tf.topk(similarity, kk).indices;
  });
  const idx = neighbours.dataSync();
  neighbours.dispose();
  const predicted = testY.map((_, i) => {
    const votes = new Map<number, number>();
    for (let j = 0; j < kk; j++) {
      const label = trainY[idx[i * kk + j]!]!;
      votes.set(label, (votes.get(label) ?? 0) + 1);
    }
    return [...votes.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0];
  });
  return accuracyOf(predicted, testY);
}

function accuracyOf(predicted: ArrayLike<number>, truth: number[]): number {
  let right = 0;
  for (let i = 0; i < truth.length; i++) if (predicted[i] === truth[i]) right++;
  return right / truth.length;
}

/**
 * Splits labelled items into train and test, stratified by label, reproducibly from `seed`.
 * `groups` (e.g. the video each frame came from) keeps every group on one side, so frames of one clip never
 * sit on both sides of the split.
 */
export function splitLabelled(
  data: LabelledItems,
  testFraction: number,
  seed: number,
  groups?: string[],
): { train: LabelledItems; test: LabelledItems } {
  const rng = new Rng(seed);
  const keys = groups ?? data.items.map((_, i) => String(i));
  const byLabel = new Map<number, string[]>();
  const labelOf = new Map<string, number>();
  keys.forEach((key, i) => {
    if (labelOf.has(key)) return;
    labelOf.set(key, data.labels[i]!);
    byLabel.set(data.labels[i]!, [...(byLabel.get(data.labels[i]!) ?? []), key]);
  });
  const testKeys = new Set<string>();
  for (const members of [...byLabel.entries()].sort((a, b) => a[0] - b[0]).map(([, m]) => m)) {
    rng.shuffle(members);
    const n = Math.max(1, Math.round(members.length * testFraction));
    members.slice(0, Math.min(n, members.length - 1)).forEach((key) => testKeys.add(key));
  }
  const train: LabelledItems = { items: [], labels: [] };
  const test: LabelledItems = { items: [], labels: [] };
  keys.forEach((key, i) => {
    const side = testKeys.has(key) ? test : train;
    side.items.push(data.items[i]!);
    side.labels.push(data.labels[i]!);
  });
  return { train, test };
}
