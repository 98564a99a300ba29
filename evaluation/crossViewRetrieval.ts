import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../core/errors.ts';
import { frameToFloat, type Frame } from '../pipeline/frame.ts';

/** Options of `crossViewRetrieval`. */
export interface CrossViewRetrievalOptions {
  /** A query counts as found when its nearest frame lies within this many moments of its own. Default 0 (top-1). */
  window?: number;
  /** Frames embedded per call. Default 64. */
  batchSize?: number;
}

/** How well the cameras of held-out recordings find each other's moments. */
export interface CrossViewRetrieval {
  /** Fraction of queries whose nearest other-camera frame lies within `window` moments of the query's moment. */
  hit: number;
  /** Mean distance in moments between a query's moment and its nearest other-camera frame's. */
  meanError: number;
  /** Queries made: every frame of every camera against every other camera of its recording. */
  queries: number;
}

/**
 * Cross-view retrieval, the alignment check of Time-Contrastive Networks (Sermanet et al. 2018; the released code's
 * multi-view alignment): for each recording, given as moments of synchronized cameras (`alignViews`,
 * `decodeViewGroup`), every frame of camera i looks for its nearest frame of camera j (cosine of `embed`'s outputs)
 * among that recording's moments, for every ordered pair i != j. A query is found when the nearest frame lies
 * within `window` moments of its own; a random embedding finds about `(2 * window + 1) / moments`.
 *
 * `embed` maps frames `[n, H, W, C]` (floats in [0, 1]) to embeddings `[n, d]`, e.g. a TCN head on the encoder or
 * the encoder alone. Embeddings are computed `batchSize` frames at a time and the similarities one camera pair at a
 * time, so memory grows with a recording's moments squared only for the score matrix.
 *
 * @example
 * const moments = await firstValueFrom(decodeViewGroup(group, format).pipe(toArray()));
 * crossViewRetrieval((x) => encoder.predict(x) as tf.Tensor2D, [moments], { window: 2 }); // { hit, meanError, queries }
 */
export function crossViewRetrieval(
  embed: (frames: tf.Tensor4D) => tf.Tensor2D,
  recordings: ReadonlyArray<ReadonlyArray<readonly Frame[]>>,
  options: CrossViewRetrievalOptions = {},
): CrossViewRetrieval {
  const { window = 0, batchSize = 64 } = options;
  if (!Number.isInteger(window) || window < 0) throw new OptionError('window', window, 'an integer >= 0 (moments)');
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new OptionError('batchSize', batchSize, 'a positive integer');
  let hits = 0;
  let errors = 0;
  let queries = 0;
  for (const moments of recordings) {
    const cameras = moments[0]?.length ?? 0;
    if (moments.some((m) => m.length !== cameras) || (moments.length > 0 && cameras < 2))
      throw new OptionError(
        'recordings',
        `moments of ${cameras} cameras`,
        'moments of two or more cameras each, one count per recording',
      );
    const embedded = Array.from({ length: cameras }, (_, c) =>
      embedCamera(
        embed,
        moments.map((m) => m[c]!),
        batchSize,
      ),
    );
    try {
      for (let i = 0; i < cameras; i++) {
        for (let j = 0; j < cameras; j++) {
          if (i === j) continue;
          const nearest = tf.tidy(() => tf.argMax(tf.matMul(embedded[i]!, embedded[j]!, false, true), 1).dataSync());
          nearest.forEach((found, query) => {
            const distance = Math.abs(found - query);
            hits += Number(distance <= window);
            errors += distance;
          });
          queries += nearest.length;
        }
      }
    } finally {
      embedded.forEach((e) => e.dispose());
    }
  }
  return { hit: queries ? hits / queries : 0, meanError: queries ? errors / queries : 0, queries };
}

/** Unit-length embeddings `[n, d]` of one camera's frames, `batchSize` at a time. */
function embedCamera(
  embed: (frames: tf.Tensor4D) => tf.Tensor2D,
  frames: readonly Frame[],
  batchSize: number,
): tf.Tensor2D {
  const parts: tf.Tensor2D[] = [];
  for (let start = 0; start < frames.length; start += batchSize) {
    const batch = frames.slice(start, start + batchSize);
    const { height, width, channels } = batch[0]!;
    const pixels = new Float32Array(batch.length * height * width * channels);
    batch.forEach((frame, k) => pixels.set(frameToFloat(frame), k * height * width * channels));
    parts.push(
      tf.tidy(() => {
        const out = embed(tf.tensor4d(pixels, [batch.length, height, width, channels]));
        return tf.div(out, tf.maximum(tf.norm(out, 2, 1, true), 1e-12)) as tf.Tensor2D;
      }),
    );
  }
  if (parts.length === 1) return parts[0]!;
  const all = tf.concat(parts, 0);
  parts.forEach((p) => p.dispose());
  return all;
}
