import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../core/errors.ts';

/** Options of the cosine kNN classifier. */
export interface KnnOptions {
  /** Neighbours that vote. Default 20 (capped at the number of training items). */
  k?: number;
  /**
   * Temperature of the weighted vote: each neighbour votes `exp(cosine / temperature)` for its class (Wu et al.
   * 2018, 0.07). Absent: one vote each, ties to the smaller label.
   */
  temperature?: number;
  /** Test rows compared with all training rows at once; bounds the similarity matrix to `[chunk, train]`. Default 512. */
  chunk?: number;
}

/**
 * Cosine k-nearest-neighbour classification of frozen features: each test row takes the class with the most
 * (or, with `temperature`, the most heavily weighted) votes among its `k` most cosine-similar training rows.
 * The weighted form is the kNN monitor of Wu et al. 2018, "Unsupervised Feature Learning via Non-Parametric
 * Instance Discrimination" (votes `exp(s / 0.07)`).
 *
 * `trainX` `[n, dim]`, `trainY` n labels, `testX` `[m, dim]`; returns m predicted labels.
 *
 * @example
 * knnClassify(tf.tensor2d([[1, 0], [0, 1]]), [0, 1], tf.tensor2d([[0.9, 0.1]]), { k: 1 }); // [0]
 */
export function knnClassify(
  trainX: tf.Tensor2D,
  trainY: readonly number[],
  testX: tf.Tensor2D,
  options: KnnOptions = {},
): number[] {
  const { k = 20, temperature, chunk = 512 } = options;
  if (!Number.isInteger(k) || k < 1) throw new OptionError('k', k, 'a positive integer');
  if (temperature !== undefined && !(temperature > 0))
    throw new OptionError('temperature', temperature, 'a number > 0');
  if (trainY.length !== trainX.shape[0])
    throw new OptionError('trainY', `${trainY.length} labels`, `one label per row of trainX (${trainX.shape[0]})`);
  const kk = Math.min(k, trainY.length);
  const trainUnit = tf.tidy(() => unit(trainX));
  const predicted: number[] = [];
  try {
    for (let start = 0; start < testX.shape[0]; start += chunk) {
      const rows = Math.min(chunk, testX.shape[0] - start);
      const { values, indices } = tf.tidy(() => {
        // [rows, train] cosine similarities, of which each row keeps its k largest.
        const similarity = tf.matMul(unit(tf.slice(testX, [start, 0], [rows, -1])), trainUnit, false, true);
        return tf.topk(similarity, kk);
      });
      const [sims, idx] = [values.dataSync(), indices.dataSync()];
      tf.dispose([values, indices]);
      for (let i = 0; i < rows; i++) {
        const votes = new Map<number, number>();
        for (let j = 0; j < kk; j++) {
          const label = trainY[idx[i * kk + j]!]!;
          const weight = temperature === undefined ? 1 : Math.exp(sims[i * kk + j]! / temperature);
          votes.set(label, (votes.get(label) ?? 0) + weight);
        }
        predicted.push([...votes.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0]);
      }
    }
  } finally {
    trainUnit.dispose();
  }
  return predicted;
}

/** Rows scaled to unit length (`[n, dim]`), a zero row stays zero. */
function unit(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.add(tf.norm(x, 'euclidean', 1, true), 1e-8));
}
