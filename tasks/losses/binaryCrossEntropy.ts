import * as tf from '@tensorflow/tfjs';

/** Binary cross-entropy on logits. labels `[batch, 1]` in {0, 1}, logits `[batch, 1]`. */
export function binaryCrossEntropy(labels: tf.Tensor, logits: tf.Tensor): tf.Scalar {
  return tf.losses.sigmoidCrossEntropy(labels, logits) as tf.Scalar;
}

/** Fraction of logits on the right side of 0. labels `[batch, 1]`, logits `[batch, 1]`. */
export function binaryAccuracy(labels: tf.Tensor, logits: tf.Tensor): tf.Scalar {
  return tf.tidy(
    () => tf.mean(tf.cast(tf.equal(tf.greater(logits, 0), tf.greater(labels, 0.5)), 'float32')) as tf.Scalar,
  );
}
