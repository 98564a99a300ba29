import * as tf from '@tensorflow/tfjs';

/** Squared distances anchor-positive and anchor-negative of stacked embeddings `[batch, 3, dim]`: two `[batch]`. */
export function tripletDistances(embeddings: tf.Tensor): [tf.Tensor1D, tf.Tensor1D] {
  const [anchor, positive, negative] = tf.unstack(embeddings, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
  return [tf.sum(tf.squaredDifference(anchor, positive), 1), tf.sum(tf.squaredDifference(anchor, negative), 1)];
}

/**
 * Triplet ranking loss (Schroff et al., FaceNet, CVPR 2015; the loss of TCN and of Wang and Gupta's tracking
 * task): `mean(max(0, |a - p|^2 - |a - n|^2 + margin))` on embeddings `[batch, 3, dim]` stacked as
 * (anchor, positive, negative), normally L2-normalised so that squared distances lie in [0, 4].
 *
 * @returns scalar loss.
 */
export function tripletLoss(embeddings: tf.Tensor, margin = 0.2): tf.Scalar {
  return tf.tidy(() => {
    const [ap, an] = tripletDistances(embeddings);
    return tf.mean(tf.relu(tf.add(tf.sub(ap, an), margin))) as tf.Scalar;
  });
}

/** Fraction of triplets ranked right: the anchor strictly nearer its positive than its negative. `[batch, 3, dim]` -> scalar. */
export function tripletAccuracy(embeddings: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const [ap, an] = tripletDistances(embeddings);
    return tf.mean(tf.cast(tf.less(ap, an), 'float32')) as tf.Scalar;
  });
}
