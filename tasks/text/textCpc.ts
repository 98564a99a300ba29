import { mlpHead } from '../../models/heads.ts';
import { textSetupOf } from './textTaskConfig.ts';
import * as tf from '@tensorflow/tfjs';
import type { OperatorFunction } from 'rxjs';
import { flushingOperator } from '../../core/flushingOperator.ts';
import { OptionError } from '../../core/errors.ts';
import { embeddingTable, encodeText, lookupEmbeddings } from '../../models/textEncoder.ts';
import { type PretextTask, type SampleTally, type SamplerContext, featureSizeOf } from '../task.ts';
import { TargetCounts, type TokenBaseline } from './tokenBaseline.ts';
import type { Sample } from '../../pipeline/sample.ts';
import {
  checkPositiveInteger,
  checkVocabulary,
  defaultVocabulary,
  fitIds,
  type TextVocabulary,
  type TokenizedSentence,
} from '../../text/tokenizedSentence.ts';

/** Options of CPC over token sequences. */
export interface TextCpcOptions {
  /** The tokenizer's ids. Default: this project's layout with 30000 ids. */
  vocabulary?: TextVocabulary;
  /** Tokens per window (the encoder's maxLength). Default 32. */
  maxLength?: number;
  /** Predict this many steps ahead (k = 1..steps), each with its own bilinear map. Default 3. */
  steps?: number;
  /** Size of the token embeddings (the encoder's `embeddingSize`): the targets z are token embeddings. Default 64. */
  embeddingSize?: number;
}

type ResolvedTextCpcOptions = Required<TextCpcOptions>;

function validateTextCpcOptions(options: TextCpcOptions): ResolvedTextCpcOptions {
  const { vocabulary = defaultVocabulary(), maxLength = 32, steps = 3, embeddingSize = 64 } = options;
  checkVocabulary(vocabulary);
  checkPositiveInteger('maxLength', maxLength);
  checkPositiveInteger('steps', steps);
  checkPositiveInteger('embeddingSize', embeddingSize);
  if (steps >= maxLength - 1)
    throw new OptionError(
      'steps',
      steps,
      `fewer than maxLength - 1 = ${maxLength - 1} (a window must hold a context and its futures)`,
    );
  return { vocabulary, maxLength, steps, embeddingSize };
}

/**
 * The sampler: the sentences of a document are joined into one token stream and cut into windows of maxLength
 * (a document's last window padded, dropped if shorter than steps + 2). Input ids `[maxLength]`; label
 * `[2, maxLength]`: a mask (1 on real tokens) then the ids, which the loss needs to tell true negatives from other
 * occurrences of the same token.
 */
export function sampleTokenWindows(
  _context: SamplerContext,
  options: ResolvedTextCpcOptions,
): OperatorFunction<TokenizedSentence, Sample> {
  const { maxLength, steps, vocabulary } = options;
  const window = (ids: number[], source?: string): Sample => {
    const fitted = fitIds(ids, maxLength, vocabulary.padId);
    const label = new Float32Array(2 * maxLength);
    label.fill(1, 0, ids.length);
    label.set(fitted, maxLength);
    return { inputs: [fitted], label, source };
  };
  return flushingOperator<TokenizedSentence, Sample>((emit) => {
    let buffer: number[] = [];
    let document: number | undefined;
    let source: string | undefined;
    const flush = (): void => {
      if (buffer.length >= steps + 2) emit(window(buffer, source));
      buffer = [];
    };
    const next = (sentence: TokenizedSentence): void => {
      if (sentence.document !== document) flush();
      document = sentence.document;
      source = sentence.source;
      for (const id of sentence.ids) {
        buffer.push(id);
        if (buffer.length === maxLength) {
          emit(window(buffer, source));
          buffer = [];
        }
      }
    };
    return { next, flush };
  });
}

/** Calls `visit(k, id, weight)` for each of a window's K * (L - K) predictions: its step, target id and weight. */
function forEachTarget(
  label: Float32Array,
  maxLength: number,
  steps: number,
  visit: (k: number, id: number, weight: number) => void,
): void {
  const T = maxLength - steps;
  for (let k = 1; k <= steps; k++) for (let t = 0; t < T; t++) visit(k, label[maxLength + t + k]!, label[t + k]!);
}

/**
 * The text-CPC baseline: the accuracy of the best context-free strategy, which scores every candidate by how
 * frequent its token is. Each prediction chooses among the targets of its batch at its step (see
 * {@link textCpcAccuracy}), so the strategy answers the most frequent token present there, and is right exactly
 * when the true target is that token. Frequencies are those of the targets of `batches` themselves (each batch a
 * list of labels `[2, maxLength]`), the same batches the accuracy is measured on; `id` is the most frequent token.
 */
export function textCpcFrequencyBaseline(
  batches: Iterable<readonly Float32Array[]>,
  maxLength: number,
  steps: number,
): TokenBaseline {
  const list = [...batches];
  const counts = new TargetCounts();
  for (const batch of list)
    for (const label of batch)
      forEachTarget(label, maxLength, steps, (_, id, w) => {
        if (w > 0) counts.add(id);
      });
  let correct = 0;
  let total = 0;
  for (const batch of list) {
    // The token the strategy answers at each step: the most frequent one among the batch's targets there.
    const pick = new Map<number, number>();
    for (const label of batch)
      forEachTarget(label, maxLength, steps, (k, id) => {
        const best = pick.get(k);
        if (
          best === undefined ||
          counts.get(id) > counts.get(best) ||
          (counts.get(id) === counts.get(best) && id < best)
        )
          pick.set(k, id);
      });
    for (const label of batch)
      forEachTarget(label, maxLength, steps, (k, id, w) => {
        total += w;
        if (id === pick.get(k)) correct += w;
      });
  }
  return { ...counts.baseline(), accuracy: total > 0 ? correct / total : 0 };
}

/**
 * Counts the targets of emitted windows: `baseline` is the share of predictions whose target is the most frequent
 * token (`mostFrequentId`), what always answering that token scores. The strategy of
 * {@link textCpcFrequencyBaseline} scores at least this (more when a batch lacks that token at a step).
 */
export function tallyCpcTargets(maxLength: number, steps: number): SampleTally {
  const counts = new TargetCounts();
  return {
    add: (sample) =>
      forEachTarget(sample.label, maxLength, steps, (_, id, w) => {
        if (w > 0) counts.add(id);
      }),
    summary: () => {
      const { id, accuracy, predictions } = counts.baseline();
      return { predictions, mostFrequentId: id, baseline: accuracy };
    },
  };
}

/**
 * Per-step InfoNCE terms. labels `[batch, 2, L]` (mask, ids), scores `[K, N, N]` with N = batch * (L - K): row n
 * = (sequence b, position t) holds the scores of the prediction for t + k against the targets of every (b', t').
 * Columns holding the same token as the row's target (other than its own) are left out of the softmax: they are
 * not negatives. Returns per-row cross-entropy, correctness and weight, each `[K, N]`.
 */
function infoNceTerms(
  labels: tf.Tensor,
  scores: tf.Tensor,
): { loss: tf.Tensor; correct: tf.Tensor; weights: tf.Tensor } {
  const [K, N] = scores.shape as [number, number, number];
  const [batch, , length] = labels.shape as [number, number, number];
  const T = length - K;
  if (N !== batch * T)
    throw new OptionError(
      'scores',
      `[${scores.shape}]`,
      `[K, batch * (maxLength - K), same] = [${K}, ${batch * T}, ${batch * T}]`,
    );
  const [mask, ids] = tf.unstack(labels, 1) as [tf.Tensor2D, tf.Tensor2D]; // [batch, L] each
  const eye = tf.eye(N);
  const losses: tf.Tensor[] = [];
  const corrects: tf.Tensor[] = [];
  const weights: tf.Tensor[] = [];
  for (let k = 1; k <= K; k++) {
    const targetIds = tf.reshape(tf.slice(ids, [0, k], [-1, T]), [N]);
    const sameToken = tf.sub(
      tf.cast(tf.equal(tf.expandDims(targetIds, 1), tf.expandDims(targetIds, 0)), 'float32'),
      eye,
    );
    const logits = tf.sub(tf.squeeze(tf.slice(scores, [k - 1, 0, 0], [1, -1, -1]), [0]), tf.mul(sameToken, 1e9)); // [N, N]
    losses.push(tf.sub(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, eye), 1)));
    corrects.push(tf.cast(tf.equal(tf.argMax(logits, 1), tf.range(0, N, 1, 'int32')), 'float32'));
    weights.push(tf.reshape(tf.slice(mask, [0, k], [-1, T]), [N]));
  }
  return { loss: tf.stack(losses), correct: tf.stack(corrects), weights: tf.stack(weights) };
}

/**
 * InfoNCE (van den Oord, Li, Vinyals 2018, eq. 4) over every prediction step: mean over real target tokens of
 * -log softmax of the true target's score. labels `[batch, 2, L]`, scores `[K, N, N]` (see the task).
 */
export function textInfoNceLoss(labels: tf.Tensor, scores: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const { loss, weights } = infoNceTerms(labels, scores);
    return tf.div(tf.sum(tf.mul(loss, weights)), tf.maximum(tf.sum(weights), 1)) as tf.Scalar;
  });
}

/** Fraction of predictions whose best-scoring target is the true future token. labels `[batch, 2, L]`, scores `[K, N, N]`. */
export function textCpcAccuracy(labels: tf.Tensor, scores: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const { correct, weights } = infoNceTerms(labels, scores);
    return tf.div(tf.sum(tf.mul(correct, weights)), tf.maximum(tf.sum(weights), 1)) as tf.Scalar;
  });
}

/**
 * Contrastive predictive coding over token sequences (van den Oord, Li, Vinyals, "Representation Learning with
 * Contrastive Predictive Coding", 2018, section 3.3 uses sentences): the targets z_t are the shared encoder's token
 * embeddings, the context c_t its forward GRU state (the first half of the per-token features, which has seen
 * tokens 0..t only); the head holds one bilinear map W_k per step, scoring z_{t+k}^T W_k c_t. Every other target
 * of the batch at the same step is a negative. Predictions are the scores `[K, N, N]`, N = batch * (L - K).
 *
 * The paper's sentence CPC encodes whole sentences (a 1D-conv encoder) and predicts up to 3 sentences ahead with
 * a GRU context over them; here the steps are tokens, because the targets are token embeddings the other text
 * tasks share. Negatives that hold the same token as the target are left out (they are not negatives). Since the
 * choice is among tokens, its trivial baseline is not chance (1 / candidates) but the context-free strategy of
 * answering the most frequent token present ({@link textCpcFrequencyBaseline}; a run summary reports the share of
 * the most frequent target over the samples emitted, {@link tallyCpcTargets}).
 *
 * @example
 * const task = createTextCpcTask({ vocabulary: vocabularyOf(tokenizer), maxLength: 32, steps: 3 });
 */
export function createTextCpcTask(options: TextCpcOptions = {}): PretextTask<TokenizedSentence> {
  const resolved = validateTextCpcOptions(options);
  const { maxLength, steps: K, embeddingSize } = resolved;
  return {
    name: 'text-cpc',
    family: 'contrastive',
    paper:
      'van den Oord, Li, Vinyals. Representation Learning with Contrastive Predictive Coding. arXiv:1807.03748, 2018',
    reads: 'sentences',
    configure: (setup) => {
      const { vocabulary, config } = textSetupOf(setup, 'text-cpc');
      return createTextCpcTask({
        ...options,
        vocabulary,
        maxLength: config.maxLength,
        embeddingSize: config.embeddingSize,
      });
    },
    sampler: (context) => sampleTokenWindows(context, resolved),
    inputShapes: () => [[maxLength]],
    labelShape: () => [2, maxLength],
    build(encoder, rng) {
      const featureSize = featureSizeOf(encoder);
      // All K maps W_k [featureSize -> embeddingSize] as one bias-free dense layer: [N, H] -> [N, K * E].
      const head = mlpHead('text_cpc_head', featureSize, [{ units: K * embeddingSize, useBias: false }], rng);
      return { head };
    },
    forward(encoder, { head }, [ids], training) {
      return tf.tidy(() => {
        const { sequence } = encodeText(encoder, ids!, training);
        const [batch, length, channels] = sequence.shape;
        const T = length - K;
        const N = batch * T;
        const table = embeddingTable(encoder);
        if (table.shape[1] !== embeddingSize)
          throw new OptionError('embeddingSize', embeddingSize, `the encoder's embeddingSize (${table.shape[1]})`);
        const z = lookupEmbeddings(table, ids!); // [batch, L, E]
        const context = tf.slice(sequence, [0, 0, 0], [-1, T, channels / 2]); // forward direction, [batch, T, H]
        const predictions = tf.reshape(head.apply(tf.reshape(context, [N, channels / 2]), { training }) as tf.Tensor, [
          N,
          K,
          embeddingSize,
        ]);
        const scores: tf.Tensor[] = [];
        for (let k = 1; k <= K; k++) {
          const predicted = tf.reshape(tf.slice(predictions, [0, k - 1, 0], [-1, 1, -1]), [N, embeddingSize]);
          const targets = tf.reshape(tf.slice(z, [0, k, 0], [-1, T, -1]), [N, embeddingSize]);
          scores.push(tf.matMul(predicted, targets, false, true)); // [N, N]
        }
        return tf.stack(scores);
      });
    },
    loss: textInfoNceLoss,
    metric: textCpcAccuracy,
    tally: () => tallyCpcTargets(maxLength, K),
  };
}

/** CPC over token sequences with the default options. */
export const textCpc = createTextCpcTask();
