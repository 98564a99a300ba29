import * as tf from '@tensorflow/tfjs';

/**
 * How a triplet loss measures distance between embeddings: `'squared-euclidean'` is `|a - b|^2` (in [0, 4] for
 * unit vectors; FaceNet, TCN), `'cosine'` is `1 - cos(a, b)` (in [0, 2]; Wang and Gupta, ICCV 2015). For unit
 * vectors the first is twice the second, so a margin `m` in cosine distance is `2m` in squared distance.
 */
export type TripletDistance = 'squared-euclidean' | 'cosine';

/**
 * Distances from each anchor to the other embeddings of its row: `[batch, n, dim]` stacked as (anchor, others...)
 * -> `[batch, n - 1]`.
 */
export function anchorDistances(embeddings: tf.Tensor, distance: TripletDistance = 'squared-euclidean'): tf.Tensor2D {
  return tf.tidy(() => {
    const n = embeddings.shape[1]!;
    const anchor = tf.slice(embeddings, [0, 0, 0], [-1, 1, -1]); // [batch, 1, dim]
    const others = tf.slice(embeddings, [0, 1, 0], [-1, n - 1, -1]); // [batch, n - 1, dim]
    // sub, not squaredDifference: the latter's gradient does not reduce over a broadcast axis.
    if (distance === 'squared-euclidean') return tf.sum(tf.square(tf.sub(anchor, others)), 2) as tf.Tensor2D;
    const dot = tf.sum(tf.mul(anchor, others), 2);
    const norms = tf.mul(tf.norm(anchor, 'euclidean', 2), tf.norm(others, 'euclidean', 2));
    return tf.sub(1, tf.div(dot, tf.maximum(norms, 1e-12))) as tf.Tensor2D;
  });
}

/** Distances anchor-positive and anchor-negative of stacked embeddings `[batch, 3, dim]`: two `[batch]`. */
export function tripletDistances(
  embeddings: tf.Tensor,
  distance: TripletDistance = 'squared-euclidean',
): [tf.Tensor1D, tf.Tensor1D] {
  return tf.tidy(() => {
    const d = anchorDistances(tf.slice(embeddings, [0, 0, 0], [-1, 3, -1]), distance);
    const [ap, an] = tf.unstack(d, 1) as [tf.Tensor1D, tf.Tensor1D];
    return [ap, an];
  });
}

/**
 * Triplet ranking loss (Schroff et al., FaceNet, CVPR 2015; the loss of TCN and of Wang and Gupta's tracking
 * task): the mean over anchors and their negatives of `max(0, D(a, p) - D(a, n) + margin)`, on embeddings
 * `[batch, 2 + k, dim]` stacked as (anchor, positive, negative 1, ..., negative k); k = 1 is the plain triplet.
 * `D` is `distance` (see `TripletDistance`); embeddings are normally L2-normalised.
 *
 * @returns scalar loss.
 * @example
 * tripletLoss(tf.tensor3d([[[1, 0], [1, 0], [0, 1]]]), 0.5, 'cosine'); // max(0, 0 - 1 + 0.5) = 0
 */
export function tripletLoss(
  embeddings: tf.Tensor,
  margin = 0.2,
  distance: TripletDistance = 'squared-euclidean',
): tf.Scalar {
  return tf.tidy(() => {
    const d = anchorDistances(embeddings, distance); // [batch, 1 + k]
    const k = d.shape[1] - 1;
    const ap = tf.slice(d, [0, 0], [-1, 1]);
    const an = tf.slice(d, [0, 1], [-1, k]);
    return tf.mean(tf.relu(tf.add(tf.sub(ap, an), margin))) as tf.Scalar;
  });
}

/**
 * Fraction of (anchor, negative) pairs ranked right: the anchor strictly nearer its positive than the negative.
 * `[batch, 2 + k, dim]` -> scalar (chance 0.5).
 */
export function tripletAccuracy(embeddings: tf.Tensor, distance: TripletDistance = 'squared-euclidean'): tf.Scalar {
  return tf.tidy(() => {
    const d = anchorDistances(embeddings, distance);
    const k = d.shape[1] - 1;
    const ap = tf.slice(d, [0, 0], [-1, 1]);
    const an = tf.slice(d, [0, 1], [-1, k]);
    return tf.mean(tf.cast(tf.less(ap, an), 'float32')) as tf.Scalar;
  });
}
