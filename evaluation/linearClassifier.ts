import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../core/errors.ts';

/** Options of the logistic regression fitted on frozen features. */
export interface LinearClassifierOptions {
  /** Full-batch Adam iterations. Default 300. */
  iterations?: number;
  /** L2 penalty on the weights. Default 1e-3. */
  l2?: number;
  /** Adam learning rate. Default 0.05. */
  learningRate?: number;
}

/** A fitted linear classifier; `dispose` frees its weights. */
export interface LinearClassifier {
  /** Predicted labels of the rows of `x` `[m, dim]`. */
  predict(x: tf.Tensor2D): number[];
  dispose(): void;
}

/**
 * Multinomial logistic regression (softmax + L2, full-batch Adam) on features standardized with the training
 * statistics: the linear evaluation protocol of self-supervised learning (Zhang et al. 2016, Kolesnikov et al.
 * 2019). `x` `[n, dim]`, `labels` n class indices below `classes`.
 *
 * @example
 * const clf = fitLinearClassifier(tf.tensor2d([[0], [1]]), [0, 1], 2);
 * clf.predict(tf.tensor2d([[0.9]])); // [1]
 * clf.dispose();
 */
export function fitLinearClassifier(
  x: tf.Tensor2D,
  labels: readonly number[],
  classes: number,
  options: LinearClassifierOptions = {},
): LinearClassifier {
  const { iterations = 300, l2 = 1e-3, learningRate = 0.05 } = options;
  if (labels.length !== x.shape[0] || labels.length === 0)
    throw new OptionError('labels', `${labels.length} labels`, `one label per row of x (${x.shape[0]}), at least one`);
  if (labels.some((y) => !Number.isInteger(y) || y < 0 || y >= classes))
    throw new OptionError(
      'labels',
      labels.find((y) => !(y >= 0 && y < classes)),
      `class indices below ${classes}`,
    );
  const dim = x.shape[1];
  const { mean, std } = tf.tidy(() => {
    const moments = tf.moments(x, 0);
    return { mean: moments.mean, std: tf.sqrt(tf.add(moments.variance, 1e-6)) };
  });
  // Created in tidy so that the zeros they start from are freed.
  const w = tf.tidy(() => tf.variable(tf.zeros([dim, classes])));
  const b = tf.tidy(() => tf.variable(tf.zeros([classes])));
  const optimizer = tf.train.adam(learningRate);
  try {
    tf.tidy(() => {
      const xs = tf.div(tf.sub(x, mean), std);
      const ys = tf.oneHot(tf.tensor1d(labels as number[], 'int32'), classes);
      for (let i = 0; i < iterations; i++) {
        optimizer.minimize(() => {
          const logits = tf.add(tf.matMul(xs, w), b);
          return tf.add(tf.losses.softmaxCrossEntropy(ys, logits), tf.mul(l2, tf.sum(tf.square(w)))) as tf.Scalar;
        });
      }
    });
  } finally {
    optimizer.dispose();
  }
  return {
    predict: (test) => {
      const predicted = tf.tidy(() => tf.argMax(tf.add(tf.matMul(tf.div(tf.sub(test, mean), std), w), b), 1));
      const out = Array.from(predicted.dataSync());
      predicted.dispose();
      return out;
    },
    dispose: () => tf.dispose([w, b, mean, std]),
  };
}
