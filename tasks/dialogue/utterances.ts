// What both dialogue-order variants share: utterances as padded ids, their vectors, the features of a pair of
// utterances, and the rule that turns an order into a wrong one.
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../core/rng.ts';
import { encodeText } from '../../models/textEncoder.ts';
import type { Dialogue } from '../../text/dialogue.ts';
import { fitIds } from '../../text/tokenizedSentence.ts';
import type { Tokenizer } from '../../text/tokenizers/Tokenizer.ts';

/** Each turn's ids, cut and padded to maxLength. */
export function encodeTurns(dialogue: Dialogue, tokenizer: Tokenizer, maxLength: number): Float32Array[] {
  const pad = tokenizer.padId ?? 0;
  return dialogue.turns.map((turn) => {
    const ids = tokenizer.encode(turn);
    // Keep [SEP] at the end of a cut utterance, so the encoder always sees where it stops.
    const cut = ids.length > maxLength ? [...ids.slice(0, maxLength - 1), ids[ids.length - 1]!] : ids;
    return fitIds(cut, maxLength, pad);
  });
}

/**
 * A negative order of a window, as in Wu et al.: half the time two items swapped, else a random shuffle; never the
 * original order. Empty padding items stay in front, so a negative is never told apart by where the padding is.
 * `undefined` when fewer than two items are real (no other order exists).
 */
export function disorder<T>(window: T[], rng: Rng, isEmpty: (item: T) => boolean): T[] | undefined {
  const first = window.findIndex((item) => !isEmpty(item));
  const real = window.slice(first);
  if (first < 0 || real.length < 2) return undefined;
  let order = real.map((_, i) => i);
  if (rng.next() < 0.5) {
    const i = rng.int(real.length);
    const j = (i + 1 + rng.int(real.length - 1)) % real.length;
    [order[i], order[j]] = [order[j]!, order[i]!];
  } else {
    do order = rng.shuffle(order);
    while (order.every((v, i) => v === i));
  }
  return [...window.slice(0, first), ...order.map((i) => real[i]!)];
}

/**
 * Utterance vectors `[n, 2 * hidden]` of ids `[n, maxLength]`: the max over an utterance's real tokens of the
 * encoder's per-token BiGRU features (InferSent-style max pooling), zeros for an empty (padding) turn. Not the
 * encoder's `pooled` output: its forward half is the GRU state after the padding that follows a short utterance,
 * and with it the task stayed near chance on DailyDialog (validation accuracy 0.53 after 800 steps, against 0.65
 * with max pooling, same seed and the settings of bench/textTasks.ts).
 */
export function utteranceVectors(
  encoder: tf.LayersModel,
  ids: tf.Tensor,
  training: boolean,
  padId: number,
): tf.Tensor2D {
  return tf.tidy(() => {
    const { sequence } = encodeText(encoder, ids, training);
    const real = tf.expandDims(tf.cast(tf.notEqual(ids, padId), 'float32'), -1); // [n, maxLength, 1]
    // Pads get -1e4 so that they never win the max; the product with `nonEmpty` keeps an empty turn at zero.
    const maxed = tf.max(tf.add(sequence, tf.mul(tf.sub(real, 1), 1e4)), 1);
    const nonEmpty = tf.cast(tf.greater(tf.sum(real, 1), 0), 'float32');
    return tf.mul(maxed, nonEmpty) as tf.Tensor2D;
  });
}

/**
 * Utterance vectors of `slots` inputs `[batch, maxLength]` in one encoder pass: `[batch, slots, 2 * hidden]`.
 */
export function slotVectors(
  encoder: tf.LayersModel,
  inputs: readonly tf.Tensor[],
  training: boolean,
  padId: number,
): tf.Tensor3D {
  return tf.tidy(() => {
    const batch = inputs[0]!.shape[0]!;
    // [slots * batch, maxLength] -> [slots * batch, 2 * hidden], slot-major.
    const vectors = utteranceVectors(encoder, tf.concat(inputs as tf.Tensor[], 0), training, padId);
    return tf.transpose(tf.reshape(vectors, [inputs.length, batch, -1]), [1, 0, 2]) as tf.Tensor3D;
  });
}

/**
 * The features of pairs of utterances (a, b), `[..., 2 * hidden]` each: `[a, b, a * b, a - b]`, `[..., 8 * hidden]`.
 * A pair of empty turns has all-zero features.
 */
export function pairFeatures(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.concat([a, b, tf.mul(a, b), tf.sub(a, b)], -1));
}
