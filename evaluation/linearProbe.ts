import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../core/errors.ts';
import { accuracy } from './accuracy.ts';
import { knnClassify } from './knnClassify.ts';
import { fitLinearClassifier } from './linearClassifier.ts';

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
  /** Neighbours of the (unweighted, cosine) kNN classifier reported beside the linear one. Default 5. */
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

/**
 * Frozen features of `items`, `[count, featureSize]` (an output of higher rank is flattened), computed
 * `batchSize` items at a time so that only one batch of inputs is a tensor at once.
 */
export function embed(encoder: tf.LayersModel, items: readonly Float32Array[], batchSize = 64): tf.Tensor2D {
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
        const out = encoder.predict(tf.tensor(flat, [chunk.length, ...shape])) as tf.Tensor;
        return tf.reshape(out, [chunk.length, -1]) as tf.Tensor2D;
      }),
    );
  }
  if (parts.length === 1) return parts[0]!;
  const out = tf.concat(parts) as tf.Tensor2D;
  tf.dispose(parts);
  return out;
}

/**
 * Linear evaluation of a frozen encoder: embed train and test items, standardize features with the train
 * statistics, fit a multinomial logistic regression (softmax + L2, full-batch Adam) on train, report accuracy
 * on test; plus a cosine kNN accuracy (k votes, unweighted) on the same features.
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
    const classifier = fitLinearClassifier(trainX, train.labels, classes, { iterations, l2 });
    const linear = accuracy(classifier.predict(testX), test.labels);
    classifier.dispose();
    const knnAccuracy = accuracy(knnClassify(trainX, train.labels, testX, { k }), test.labels);
    return { accuracy: linear, knnAccuracy, trainCount: train.items.length, testCount: test.items.length };
  } finally {
    tf.dispose([trainX, testX]);
  }
}
