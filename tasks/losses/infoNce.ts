import * as tf from '@tensorflow/tfjs';

/**
 * InfoNCE on precomputed scores (van den Oord, Li and Vinyals. Representation Learning with Contrastive
 * Predictive Coding. 2018): each row is one query's scores against all candidates, `targets[i]` the column of
 * its positive; the loss is the mean softmax cross-entropy of picking the positive, i.e.
 * `mean_i(logsumexp_j(s_ij) - s_i,targets[i])`.
 *
 * @param logits `[n, m]` scores (log-bilinear scores or cosine similarities over a temperature).
 * @param targets `[n]` int32, the positive's column of each row.
 * @returns scalar loss.
 * @example
 * infoNceFromLogits(tf.tensor2d([[5, 0], [0, 5]]), tf.tensor1d([0, 1], 'int32')); // ~0.0067
 */
export function infoNceFromLogits(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const positive = tf.sum(tf.mul(logits, tf.oneHot(targets, logits.shape[1])), 1);
    return tf.mean(tf.sub(tf.logSumExp(logits, 1), positive)) as tf.Scalar;
  });
}

/**
 * Fraction of rows whose highest score is at their positive's column. `logits` `[n, m]`, `targets` `[n]` int32.
 * Chance is `1 / m` for random scores.
 */
export function contrastiveAccuracy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), targets), 'float32')) as tf.Scalar);
}

/**
 * InfoNCE between two batches of embeddings whose rows pair up (the n-pairs / NT-Xent form used by CPC, TCN's
 * n-pairs variant and SimCLR's one-direction loss): row i of `queries` is positive with row i of `keys`, every
 * other key is a negative. Embeddings are L2-normalised, so scores are cosine similarities over `temperature`.
 *
 * @param queries `[n, d]`.
 * @param keys `[n, d]`.
 * @param temperature softmax temperature, > 0. Default 0.1.
 * @returns scalar loss.
 */
export function infoNce(queries: tf.Tensor2D, keys: tf.Tensor2D, temperature = 0.1): tf.Scalar {
  return tf.tidy(() => {
    const logits = tf.div(tf.matMul(l2Normalize(queries), l2Normalize(keys), false, true), temperature) as tf.Tensor2D;
    return infoNceFromLogits(logits, tf.range(0, queries.shape[0], 1, 'int32') as tf.Tensor1D);
  });
}

/** Rows scaled to unit L2 norm (a small epsilon keeps zero rows finite). `[n, d] -> [n, d]`. */
export function l2Normalize<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), -1, true), 1e-12))) as T);
}

/**
 * The collapse signal of an embedding (lightly's and solo-learn's std monitor): the standard deviation over the
 * batch of each dimension of the l2-normalized rows, averaged over dimensions. About 1/sqrt(d) when the rows spread
 * over the sphere, 0 when every input maps to one point (the collapse non-contrastive methods risk).
 *
 * @example
 * embeddingStd(tf.tensor2d([[1, 0], [0, 1], [-1, 0], [0, -1]])); // about 0.71 (1/sqrt(2))
 */
export function embeddingStd(embeddings: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.sqrt(tf.moments(l2Normalize(embeddings), 0).variance)) as tf.Scalar);
}
