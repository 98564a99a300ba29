import * as tf from '@tensorflow/tfjs';

/**
 * Multinomial cross-entropy over a grid of locations with class rebalancing, the loss of colorization (Zhang,
 * Isola and Efros 2016, eq. 2): each location's cross-entropy between its target distribution and the softmax of
 * its logits is weighted by the rebalancing weight of the target's most likely class, v(Z) = w[argmax_q Z_q], and
 * the weighted losses are averaged over batch and locations (the paper sums over locations; the mean only scales
 * the learning rate).
 *
 * labels `[batch, locations, classes]` (each row a distribution), logits of the same shape, `classWeights`
 * `[classes]` or none (plain cross-entropy). Returns a scalar.
 */
export function rebalancedCrossEntropy(
  labels: tf.Tensor,
  logits: tf.Tensor,
  classWeights?: ArrayLike<number>,
): tf.Scalar {
  return tf.tidy(() => {
    const perLocation = tf.neg(tf.sum(tf.mul(labels, tf.logSoftmax(logits, -1)), -1));
    if (!classWeights) return tf.mean(perLocation) as tf.Scalar;
    const weights = tf.gather(tf.tensor1d(Float32Array.from(classWeights)), tf.argMax(labels, -1));
    return tf.mean(tf.mul(weights, perLocation)) as tf.Scalar;
  });
}

/** Fraction of locations whose arg-max logit is the target's most likely class; shapes as `rebalancedCrossEntropy`. */
export function locationAccuracy(labels: tf.Tensor, logits: tf.Tensor): tf.Scalar {
  return tf.tidy(
    () => tf.mean(tf.cast(tf.equal(tf.argMax(logits, -1), tf.argMax(labels, -1)), 'float32')) as tf.Scalar,
  );
}
