import { mlpHead } from '../../models/heads.ts';
import { textSetupOf } from './textTaskConfig.ts';
import * as tf from '@tensorflow/tfjs';
import type { OperatorFunction } from 'rxjs';
import { operate } from '../../core/operate.ts';
import { OptionError } from '../../core/errors.ts';
import type { Rng } from '../../core/rng.ts';
import { encodeText, lookupEmbeddings } from '../../models/textEncoder.ts';
import { type PretextTask, type SampleTally, type SamplerContext, featureSizeOf } from '../task.ts';
import { TargetCounts, type TokenBaseline } from './tokenBaseline.ts';
import type { Sample } from '../../pipeline/sample.ts';
import {
  checkPositiveInteger,
  checkVocabulary,
  defaultVocabulary,
  type TextVocabulary,
  type TokenizedSentence,
} from '../../text/tokenizedSentence.ts';

/** Options of the masked language model task. */
export interface MlmOptions {
  /** The tokenizer's ids ({@link vocabularyOf}). Default: this project's layout with 30000 ids. */
  vocabulary?: TextVocabulary;
  /** Tokens per sequence, [CLS] and [SEP] included; longer sentences are cut. Default 32. */
  maxLength?: number;
  /** Fraction of a sequence's tokens chosen for prediction. Default 0.15, as in BERT. */
  maskFraction?: number;
  /** Most predictions per sequence (BERT's max_predictions_per_seq). Default ceil(maskFraction * maxLength). */
  maxPredictions?: number;
}

type ResolvedMlmOptions = Required<MlmOptions>;

function validateMlmOptions(options: MlmOptions): ResolvedMlmOptions {
  const { vocabulary = defaultVocabulary(), maxLength = 32, maskFraction = 0.15 } = options;
  checkVocabulary(vocabulary);
  checkPositiveInteger('maxLength', maxLength);
  if (maxLength < 3) throw new OptionError('maxLength', maxLength, 'at least 3 ([CLS], a token, [SEP])');
  if (!(maskFraction > 0 && maskFraction < 1))
    throw new OptionError('maskFraction', maskFraction, 'a fraction in (0, 1), e.g. 0.15');
  const maxPredictions = options.maxPredictions ?? Math.ceil(maskFraction * maxLength);
  checkPositiveInteger('maxPredictions', maxPredictions);
  return { vocabulary, maxLength, maskFraction, maxPredictions };
}

/** A masked sequence: the corrupted ids, where predictions are asked, and what the true tokens were. */
export interface MaskedSequence {
  /** `[CLS] tokens [SEP]` padded to maxLength, with the chosen positions corrupted. */
  ids: Float32Array;
  /** Positions asked for (padded with 0 to maxPredictions). */
  positions: Float32Array;
  /** The true ids at those positions (0 where padded). */
  targets: Float32Array;
  /** 1 for real predictions, 0 for padding. */
  weights: Float32Array;
}

/**
 * BERT's corruption (Devlin et al. 2019, section 3.1): choose `maskFraction` of the tokens (at least one, at
 * most maxPredictions, never special tokens); replace each by [MASK] 80% of the time, by a random token 10%, and
 * leave it unchanged 10%. Returns undefined for a sentence with no maskable token.
 */
export function maskTokens(
  ids: Int32Array,
  options: ResolvedMlmOptions,
  rng: Rng,
  randomIds: Int32Array,
): MaskedSequence | undefined {
  const { vocabulary: v, maxLength, maskFraction, maxPredictions } = options;
  // The sequence `[CLS] ids [SEP]` written straight into the (padded) input; typed arrays, no per-token objects.
  const length = Math.min(ids.length, maxLength - 2) + 2;
  const sequence = new Float32Array(maxLength);
  if (v.padId !== 0) sequence.fill(v.padId);
  sequence[0] = v.clsId;
  for (let i = 0; i < length - 2; i++) sequence[i + 1] = ids[i]!;
  sequence[length - 1] = v.sepId;
  const special = specialTable(v);
  const candidates = new Int32Array(length);
  let n = 0;
  for (let i = 0; i < length; i++) if (special[sequence[i]!] !== 1) candidates[n++] = i;
  if (n === 0) return undefined;
  const count = Math.min(maxPredictions, Math.max(1, Math.round(n * maskFraction)));
  // Fisher-Yates over the candidates as Rng.shuffle draws it, then the first `count`, in position order.
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const swap = candidates[i]!;
    candidates[i] = candidates[j]!;
    candidates[j] = swap;
  }
  // The first `count` in position order (an insertion sort: count is at most maxPredictions, a handful).
  for (let i = 1; i < count; i++) {
    const p = candidates[i]!;
    let j = i - 1;
    for (; j >= 0 && candidates[j]! > p; j--) candidates[j + 1] = candidates[j]!;
    candidates[j + 1] = p;
  }
  const chosen = candidates;
  const out: MaskedSequence = {
    // Each chosen position is read (its target) before it is corrupted, once: the sequence itself is the input.
    ids: sequence,
    positions: new Float32Array(maxPredictions),
    targets: new Float32Array(maxPredictions),
    weights: new Float32Array(maxPredictions),
  };
  for (let k = 0; k < count; k++) {
    const p = chosen[k]!;
    out.positions[k] = p;
    out.targets[k] = sequence[p]!;
    out.weights[k] = 1;
    const r = rng.next();
    if (r < 0.8) out.ids[p] = v.maskId;
    else if (r < 0.9) out.ids[p] = randomIds[rng.int(randomIds.length)]!;
  }
  return out;
}

/** 1 at each special id (never masked), by vocabulary: a lookup a token where `includes` scanned a list. */
const specialTables = new WeakMap<TextVocabulary, Uint8Array>();
function specialTable(vocabulary: TextVocabulary): Uint8Array {
  let table = specialTables.get(vocabulary);
  if (!table) {
    table = new Uint8Array(vocabulary.vocabSize);
    for (const id of vocabulary.specialIds) if (id >= 0 && id < table.length) table[id] = 1;
    specialTables.set(vocabulary, table);
  }
  return table;
}

/** The ids a random replacement is drawn from: every id but the special ones. */
function replacementIds(vocabulary: TextVocabulary): Int32Array {
  const special = new Set(vocabulary.specialIds);
  const ids: number[] = [];
  for (let id = 0; id < vocabulary.vocabSize; id++) if (!special.has(id)) ids.push(id);
  return Int32Array.from(ids.length > 0 ? ids : [vocabulary.maskId]);
}

/**
 * The sampler: one sample per sentence, inputs corrupted ids `[maxLength]` and positions `[maxPredictions]`,
 * label `[2, maxPredictions]` (true ids, then weights).
 */
export function sampleMaskedTokens(
  context: SamplerContext,
  options: ResolvedMlmOptions,
): OperatorFunction<TokenizedSentence, Sample> {
  const randomIds = replacementIds(options.vocabulary);
  const predictions = options.maxPredictions;
  return operate<TokenizedSentence, Sample>((subscriber) => ({
    next: (sentence) => {
      const masked = maskTokens(sentence.ids, options, context.rng, randomIds);
      if (!masked) return;
      const label = new Float32Array(2 * predictions);
      label.set(masked.targets);
      label.set(masked.weights, predictions);
      subscriber.next({ inputs: [masked.ids, masked.positions], label, source: sentence.source });
    },
  }));
}

/** The true ids of a masked-LM label `[2, P]` (targets, then weights) that count (weight 1). */
function maskedTargets(label: Float32Array, maxPredictions: number): number[] {
  const ids: number[] = [];
  for (let k = 0; k < maxPredictions; k++) if (label[maxPredictions + k]! > 0) ids.push(label[k]!);
  return ids;
}

/**
 * The masked-LM baseline: the accuracy of always predicting the most frequent token among the masked positions'
 * targets of `labels` (each `[2, maxPredictions]`). Measured on the held-out samples themselves, it is the best
 * any context-free guess can score there.
 */
export function mlmFrequencyBaseline(labels: Iterable<Float32Array>, maxPredictions: number): TokenBaseline {
  const counts = new TargetCounts();
  for (const label of labels) for (const id of maskedTargets(label, maxPredictions)) counts.add(id);
  return counts.baseline();
}

/** Counts masked targets: `baseline`, the accuracy of always answering the most frequent one, and its id. */
export function tallyMaskedTargets(maxPredictions: number): SampleTally {
  const counts = new TargetCounts();
  return {
    add: (sample) => maskedTargets(sample.label, maxPredictions).forEach((id) => counts.add(id)),
    summary: () => {
      const { id, accuracy, predictions } = counts.baseline();
      return { predictions, mostFrequentId: id, baseline: accuracy };
    },
  };
}

/** Per-prediction cross-entropy and correctness. labels `[batch, 2, P]`, logits `[batch, P, vocab]`. */
function maskedTerms(
  labels: tf.Tensor,
  logits: tf.Tensor,
): { loss: tf.Tensor2D; correct: tf.Tensor2D; weights: tf.Tensor2D } {
  const [targets, weights] = tf.unstack(labels, 1) as [tf.Tensor2D, tf.Tensor2D]; // [batch, P] each
  const vocab = logits.shape[2]!;
  const targetLogit = tf.sum(tf.mul(logits, tf.oneHot(tf.cast(targets, 'int32'), vocab)), -1);
  const loss = tf.sub(tf.logSumExp(logits, -1), targetLogit) as tf.Tensor2D;
  const correct = tf.cast(tf.equal(tf.argMax(logits, -1), tf.cast(targets, 'int32')), 'float32') as tf.Tensor2D;
  return { loss, correct, weights };
}

/**
 * Masked-LM loss: mean cross-entropy over the real predictions (weight 1). labels `[batch, 2, P]` (true ids, then
 * weights), logits `[batch, P, vocabSize]`.
 */
export function maskedLmLoss(labels: tf.Tensor, logits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const { loss, weights } = maskedTerms(labels, logits);
    return tf.div(tf.sum(tf.mul(loss, weights)), tf.maximum(tf.sum(weights), 1)) as tf.Scalar;
  });
}

/** Accuracy on the masked positions. labels `[batch, 2, P]`, logits `[batch, P, vocabSize]`. */
export function maskedLmAccuracy(labels: tf.Tensor, logits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const { correct, weights } = maskedTerms(labels, logits);
    return tf.div(tf.sum(tf.mul(correct, weights)), tf.maximum(tf.sum(weights), 1)) as tf.Scalar;
  });
}

/**
 * Masked language modelling (BERT, Devlin, Chang, Lee, Toutanova, NAACL 2019): 15% of the tokens are chosen, and
 * (80/10/10) masked, replaced or kept; the model predicts the originals. The shared encoder's per-token features
 * `[batch, maxLength, 2 * hidden]` at the chosen positions go through the head (dense + ReLU, then a softmax
 * layer over the vocabulary): logits `[batch, maxPredictions, vocabSize]`. The metric is accuracy on the chosen
 * positions. Its trivial baseline is always answering the most frequent target token ({@link mlmFrequencyBaseline}
 * on held-out samples; a run summary reports it over the samples emitted, {@link tallyMaskedTargets}): on English
 * that token alone scores several percent, far above chance (1 / vocabSize).
 *
 * BERT masks within a Transformer's 512-token sequences of sentence pairs and ties the output softmax to the input
 * embeddings; here one sentence of at most maxLength tokens is read by the shared bidirectional GRU (the small
 * encoder every text task trains), and the softmax layer is the head's own: tying it would need a projection from
 * the GRU's features to the embedding size, which this head does not have.
 *
 * @example
 * const task = createMlmTask({ vocabulary: vocabularyOf(tokenizer), maxLength: 32 });
 * sentences$.pipe(tokenizeSentences(tokenizer), task.sampler({ rng: new Rng(1) }));
 */
export function createMlmTask(options: MlmOptions = {}): PretextTask<TokenizedSentence> {
  const resolved = validateMlmOptions(options);
  const { maxLength, maxPredictions, vocabulary } = resolved;
  return {
    name: 'mlm',
    family: 'text-context',
    paper:
      'Devlin, Chang, Lee, Toutanova. BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding. NAACL 2019',
    reads: 'sentences',
    configure: (setup) => {
      const { vocabulary, config } = textSetupOf(setup, 'mlm');
      return createMlmTask({ ...options, vocabulary, maxLength: config.maxLength });
    },
    sampler: (context) => sampleMaskedTokens(context, resolved),
    inputShapes: () => [[maxLength], [maxPredictions]],
    labelShape: () => [2, maxPredictions],
    build(encoder, rng) {
      const featureSize = featureSizeOf(encoder);
      const blocks = [{ units: featureSize, activation: 'relu' as const }, { units: vocabulary.vocabSize }];
      const head = mlpHead('mlm_head', 2 * featureSize, blocks, rng);
      return { head };
    },
    forward(encoder, { head }, [ids, positions], training) {
      return tf.tidy(() => {
        const { sequence } = encodeText(encoder, ids!, training);
        const [batch, length, dim] = sequence.shape;
        // Row of each prediction in the flattened [batch * length, dim] features.
        const rows = tf.add(positions!, tf.mul(tf.range(0, batch, 1, 'float32').expandDims(1), length)); // [batch, P]
        const picked = lookupEmbeddings(tf.reshape(sequence, [batch * length, dim]), rows); // [batch, P, dim]
        const logits = head.apply(tf.reshape(picked, [batch * maxPredictions, dim]), { training }) as tf.Tensor;
        return tf.reshape(logits, [batch, maxPredictions, vocabulary.vocabSize]);
      });
    },
    loss: maskedLmLoss,
    metric: maskedLmAccuracy,
    tally: () => tallyMaskedTargets(maxPredictions),
  };
}

/** The masked-LM task with the default options (this project's special ids, 30000 ids, 32 tokens). */
export const mlm = createMlmTask();
