import * as tf from '@tensorflow/tfjs';

/** Softmax cross-entropy of logits `[batch, classes]` against one-hot labels `[batch, classes]`. */
export function softmaxCrossEntropy(labels: tf.Tensor, logits: tf.Tensor): tf.Scalar {
  return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
}

/** Fraction of rows whose arg-max logit is the labelled class. labels one-hot `[batch, classes]`, logits `[batch, classes]`. */
export function categoricalAccuracy(labels: tf.Tensor, logits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(labels, 1)), 'float32')) as tf.Scalar);
}
