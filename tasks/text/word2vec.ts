import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../../core/errors.ts';
import type { Rng } from '../../core/rng.ts';
import { TokenEmbedding, embeddingTable, lookupEmbeddings, tokenEmbeddings } from '../../models/textEncoder.ts';
import { checkPositiveInteger, type TokenizedSentence } from '../../text/tokenizedSentence.ts';

/**
 * The shared base of skip-gram and CBOW (Mikolov, Chen, Corrado, Dean 2013, "Efficient Estimation of Word
 * Representations in Vector Space"; Mikolov, Sutskever, Chen, Corrado, Dean 2013, "Distributed Representations
 * of Words and Phrases and their Compositionality"): negative sampling from the unigram distribution raised to
 * 3/4, frequent-word subsampling, dynamic windows, the loss and the metric. The input ("word") vectors are the
 * shared text encoder's token embeddings, so word2vec trains the same table the sequence tasks read; the output
 * ("context") vectors are the task's head.
 *
 * Both the noise distribution and subsampling read whole-corpus counts, as in the paper (the C code counts the
 * training file before its first pass): `pretrain --text` and `process-corpus` count the corpus's token ids in a
 * pass of their own before sampling (see recipes/textTasks.ts `countCorpusTokens`), and a sampler without counts
 * refuses to start instead of guessing them from what it has read so far. Differences that remain: a negative
 * equal to the positive is drawn again (up to 4 times) where the C code drops it, and draws are exact (Walker's
 * alias method) where the C code reads a table of 1e8 slots.
 */

/** Options of the word2vec tasks. */
export interface Word2vecOptions {
  /** Number of token ids. Default 30000. */
  vocabSize?: number;
  /** Size of the word vectors; must equal the encoder's `embeddingSize`. Default 64. */
  embeddingSize?: number;
  /** Largest distance between a word and its context; each position draws its window from 1..window. Default 5. */
  window?: number;
  /** Negative words drawn per positive. Default 5. */
  negatives?: number;
  /**
   * Subsampling threshold t: a word of corpus frequency f is kept with probability min(1, sqrt(t / f) + t / f),
   * the word2vec C code's form ((sqrt(f / t) + 1) t / f); the paper writes the discard probability as
   * 1 - sqrt(t / f), which keeps sqrt(t / f) alone. 0 turns subsampling off. Default 1e-3 (the C code's default;
   * the paper used 1e-5 on billions of words).
   */
  subsample?: number;
  /**
   * Whole-corpus count of each id (length vocabSize), e.g. from {@link countTokens}: negatives follow
   * count^0.75 and subsampling reads count / total. Required by the sampler; a run passes the counts of its own
   * counting pass through `configure` (`TaskSetup.tokenCounts`).
   */
  counts?: ArrayLike<number>;
}

export type ResolvedWord2vecOptions = Required<Omit<Word2vecOptions, 'counts'>> & { counts?: ArrayLike<number> };

export function validateWord2vecOptions(options: Word2vecOptions): ResolvedWord2vecOptions {
  const { vocabSize = 30000, embeddingSize = 64, window = 5, negatives = 5, subsample = 1e-3, counts } = options;
  checkPositiveInteger('vocabSize', vocabSize);
  checkPositiveInteger('embeddingSize', embeddingSize);
  checkPositiveInteger('window', window);
  checkPositiveInteger('negatives', negatives);
  if (!(subsample >= 0 && subsample < 1))
    throw new OptionError('subsample', subsample, 'a threshold in [0, 1), e.g. 1e-3 (0: keep every word)');
  if (counts) {
    if (counts.length !== vocabSize)
      throw new OptionError('counts', `${counts.length} counts`, `one count per id (${vocabSize})`);
    let total = 0;
    for (let i = 0; i < counts.length; i++) {
      const c = counts[i]!;
      if (!(c >= 0 && Number.isFinite(c))) throw new OptionError(`counts[${i}]`, c, 'a count >= 0');
      total += c;
    }
    if (total === 0) throw new OptionError('counts', 'all 0', 'the counts of a corpus that holds tokens');
  }
  return { vocabSize, embeddingSize, window, negatives, subsample, counts };
}

/** Counts of each id over tokenized sentences (for {@link Word2vecOptions.counts}). */
export function countTokens(sentences: Iterable<TokenizedSentence>, vocabSize: number): Float64Array {
  const counts = new Float64Array(vocabSize);
  for (const s of sentences) for (const id of s.ids) counts[id]!++;
  return counts;
}

/**
 * The noise distribution of negative sampling: P(i) = count_i^0.75 / sum_j count_j^0.75 (the paper's U(w)^{3/4}/Z),
 * drawn exactly in O(1) by Walker's alias method (Vose's construction).
 */
export class NoiseDistribution {
  /** P(i) of each id. */
  readonly probabilities: Float64Array;
  /** The alias table: slot i (drawn uniformly) gives i with probability accept[i], else alias[i]. */
  readonly accept: Float64Array;
  readonly alias: Int32Array;

  constructor(counts: ArrayLike<number>, power = 0.75) {
    const n = counts.length;
    const weights = Float64Array.from({ length: n }, (_, i) => (counts[i]! > 0 ? Math.pow(counts[i]!, power) : 0));
    const norm = weights.reduce((a, b) => a + b, 0);
    if (!(norm > 0)) throw new OptionError('counts', 'all 0', 'the counts of a corpus that holds tokens');
    this.probabilities = weights.map((w) => w / norm);
    this.accept = new Float64Array(n);
    this.alias = new Int32Array(n);
    const scaled = this.probabilities.map((p) => p * n);
    const small: number[] = [];
    const large: number[] = [];
    scaled.forEach((p, i) => (p < 1 ? small : large).push(i));
    while (small.length > 0 && large.length > 0) {
      const s = small.pop()!;
      const l = large.pop()!;
      this.accept[s] = scaled[s]!;
      this.alias[s] = l;
      scaled[l] = scaled[l]! + scaled[s]! - 1;
      (scaled[l]! < 1 ? small : large).push(l);
    }
    // What is left is 1 up to rounding: always accepted.
    for (const i of [...small, ...large]) {
      this.accept[i] = 1;
      this.alias[i] = i;
    }
  }

  /** One id drawn from the distribution. */
  draw(rng: Rng): number {
    const slot = rng.int(this.accept.length);
    return rng.next() < this.accept[slot]! ? slot : this.alias[slot]!;
  }
}

/**
 * Per-subscription state of a word2vec sampler: subsampling and negatives, both from whole-corpus counts (fixed
 * for the run, so every epoch subsamples and draws alike).
 */
export class WordSampler {
  readonly #options: ResolvedWord2vecOptions;
  readonly #rng: Rng;
  /** Keep probability of each id (1 for ids the counts never saw). */
  readonly #keep: Float64Array;
  readonly #noise: NoiseDistribution;

  /** @throws OptionError when the options hold no counts. */
  constructor(options: ResolvedWord2vecOptions, rng: Rng) {
    const counts = requireCounts(options);
    this.#options = options;
    this.#rng = rng;
    this.#keep = keepProbabilities(counts, options.subsample);
    this.#noise = new NoiseDistribution(counts);
  }

  /** The ids of a sentence that survive subsampling. */
  keep(ids: Int32Array): number[] {
    const kept: number[] = [];
    for (const id of ids) {
      const p = this.#keep[id] ?? 1;
      if (p >= 1 || this.#rng.next() < p) kept.push(id);
    }
    return kept;
  }

  /**
   * `[positive, negative_1..K]` as a sample input: K ids from the noise distribution, one equal to `positive`
   * drawn again up to 4 times, written straight into the array (skip-gram makes millions of these).
   */
  targets(positive: number): Float32Array {
    const out = new Float32Array(1 + this.#options.negatives);
    out[0] = positive;
    for (let k = 1; k < out.length; k++) {
      let id = this.#noise.draw(this.#rng);
      for (let tries = 0; id === positive && tries < 4; tries++) id = this.#noise.draw(this.#rng);
      out[k] = id;
    }
    return out;
  }

  /** The window radius of one position, drawn from 1..window as the C code does (near words weigh more). */
  radius(): number {
    return 1 + this.#rng.int(this.#options.window);
  }
}

/** The counts of the options. @throws OptionError naming the fix when there are none. */
export function requireCounts(options: ResolvedWord2vecOptions): ArrayLike<number> {
  if (options.counts) return options.counts;
  throw new OptionError(
    'counts',
    undefined,
    "the corpus's count of each token id (countTokens, or pretrainText / processCorpus, which count the corpus): negatives and subsampling read whole-corpus counts",
  );
}

/**
 * The probability that subsampling keeps each id: min(1, sqrt(t / f) + t / f) with f = count / total (the C
 * code's form); 1 everywhere when t is 0 and for ids of count 0.
 */
export function keepProbabilities(counts: ArrayLike<number>, t: number): Float64Array {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  return Float64Array.from({ length: counts.length }, (_, i) => {
    const f = counts[i]! / total;
    return t === 0 || f === 0 ? 1 : Math.min(1, Math.sqrt(t / f) + t / f);
  });
}

/** The label of every word2vec sample: the positive first, then `negatives` zeros. */
export function word2vecLabel(negatives: number): Float32Array {
  const label = new Float32Array(1 + negatives);
  label[0] = 1;
  return label;
}

/**
 * The output ("context") vectors: ids `[batch, 1 + negatives]` -> `[batch, 1 + negatives, embeddingSize]`. Small
 * random rather than the C code's zeros, so that the first steps already move the input vectors too.
 */
export function buildContextHead(options: ResolvedWord2vecOptions, rng: Rng, name: string): tf.LayersModel {
  const ids = tf.input({ shape: [1 + options.negatives], name: `${name}_targets` });
  const table = new TokenEmbedding({
    vocabSize: options.vocabSize,
    embeddingSize: options.embeddingSize,
    seed: rng.int(2 ** 31),
    name: `${name}_context_vectors`,
  });
  return tf.model({ inputs: ids, outputs: table.apply(ids) as tf.SymbolicTensor, name });
}

/** The encoder's token embedding table as a tensor variable `[vocabSize, embeddingSize]`, checked against the task. */
export function wordTable(encoder: tf.LayersModel, options: ResolvedWord2vecOptions): tf.Tensor2D {
  const table = embeddingTable(encoder);
  if (table.shape[0] !== options.vocabSize || table.shape[1] !== options.embeddingSize) {
    throw new OptionError(
      'encoder',
      `embeddings [${table.shape}]`,
      `[${options.vocabSize}, ${options.embeddingSize}]: the same vocabSize and embeddingSize for encoder and task`,
    );
  }
  return table;
}

/**
 * Dot products of word vectors `[batch, embeddingSize]` with the context vectors of `targets` `[batch, 1 + K]`
 * (positive first): logits `[batch, 1 + K]`.
 */
export function scoreTargets(
  head: tf.LayersModel,
  words: tf.Tensor2D,
  targets: tf.Tensor,
  training: boolean,
): tf.Tensor2D {
  const context = head.apply(targets, { training }) as tf.Tensor3D; // [batch, 1 + K, E]
  return tf.sum(tf.mul(context, tf.expandDims(words, 1)), -1) as tf.Tensor2D;
}

/** Input vectors of ids `[batch, n]` -> `[batch, n, embeddingSize]` from the encoder's table. */
export function lookupWords(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor3D {
  return lookupEmbeddings(table, ids) as tf.Tensor3D;
}

/**
 * Negative-sampling loss: -log σ(s_pos) - Σ_k log σ(-s_neg_k) per sample (the paper's objective, negated),
 * averaged over the batch. labels `[batch, 1 + K]` (1 for the positive, 0 for negatives), logits `[batch, 1 + K]`.
 */
export function negativeSamplingLoss(labels: tf.Tensor, logits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    // Binary cross-entropy on logits, in the stable form max(x, 0) - x y + log(1 + e^-|x|).
    const x = logits;
    const perPair = tf.add(tf.sub(tf.relu(x), tf.mul(x, labels)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
    return tf.mean(tf.sum(perPair, -1)) as tf.Scalar;
  });
}

/** Fraction of samples whose positive (column 0) scores above every negative. Chance is 1 / (1 + K). */
export function positiveRankAccuracy(_labels: tf.Tensor, logits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(logits, -1), 0), 'float32')) as tf.Scalar);
}

/** A word and how close its vector is to the query's. */
export interface WordNeighbour {
  word: string;
  /** Cosine similarity in [-1, 1]. */
  similarity: number;
}

/** What {@link nearestWords} needs of a vocabulary (a Tokenizer fits). */
export interface WordLookup {
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
}

/**
 * The `k` words whose vectors have the highest cosine similarity to `word`'s, from a text encoder's token
 * embeddings (or a `[vocabSize, dim]` table). Tokens in brackets ([PAD], [UNK], ...) and the word itself are
 * left out.
 *
 * @throws OptionError when `word` is not in the vocabulary.
 * @example
 * nearestWords(encoder, tokenizer, 'emma', 5); // [{ word: 'harriet', similarity: 0.71 }, ...]
 */
export function nearestWords(
  source: tf.LayersModel | tf.Tensor2D,
  vocabulary: WordLookup,
  word: string,
  k: number,
): WordNeighbour[] {
  const id = vocabulary.tokenToId(word);
  if (id === undefined) throw new OptionError('word', word, 'a word of the vocabulary');
  const similarities = tf.tidy(() => {
    const table = source instanceof tf.Tensor ? source : tokenEmbeddings(source);
    const unit = tf.div(table, tf.add(tf.norm(table, 'euclidean', 1, true), 1e-8));
    return tf.squeeze(tf.matMul(unit, tf.slice(unit, [id, 0], [1, -1]), false, true)).dataSync() as Float32Array;
  });
  const ranked: WordNeighbour[] = [];
  similarities.forEach((similarity, other) => {
    const token = vocabulary.idToToken(other);
    if (other !== id && token !== undefined && !/^\[.*\]$/.test(token)) ranked.push({ word: token, similarity });
  });
  return ranked.sort((a, b) => b.similarity - a.similarity).slice(0, k);
}
