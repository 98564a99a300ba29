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
   * Subsampling threshold t: a word of corpus frequency f is kept with probability (sqrt(f / t) + 1) t / f (the
   * word2vec C code's form of the paper's 1 - sqrt(t / f)). 0 turns subsampling off. Default 1e-3.
   */
  subsample?: number;
  /**
   * Corpus count of each id (length vocabSize), e.g. from {@link countTokens}. With it, negatives follow
   * count^0.75 as in the paper; without it, counts are gathered as the stream goes and negatives are drawn from a
   * reservoir of words seen so far (the unigram distribution, unsmoothed).
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
  if (counts && counts.length !== vocabSize)
    throw new OptionError('counts', `${counts.length} counts`, `one count per id (${vocabSize})`);
  return { vocabSize, embeddingSize, window, negatives, subsample, counts };
}

/** Counts of each id over tokenized sentences (for {@link Word2vecOptions.counts}). */
export function countTokens(sentences: Iterable<TokenizedSentence>, vocabSize: number): Float64Array {
  const counts = new Float64Array(vocabSize);
  for (const s of sentences) for (const id of s.ids) counts[id]!++;
  return counts;
}

const TABLE_SIZE = 1_000_000;
const RESERVOIR_SIZE = 100_000;

/**
 * Per-subscription state of a word2vec sampler: the counts that subsampling reads and the table negatives are
 * drawn from.
 */
export class WordSampler {
  readonly #options: ResolvedWord2vecOptions;
  readonly #rng: Rng;
  readonly #counts: Float64Array;
  #total = 0;
  readonly #table: Int32Array;
  #filled = 0;
  #seen = 0;
  readonly #fixed: boolean;

  constructor(options: ResolvedWord2vecOptions, rng: Rng) {
    this.#options = options;
    this.#rng = rng;
    this.#fixed = options.counts !== undefined;
    this.#counts = Float64Array.from(options.counts ?? new Float64Array(options.vocabSize));
    for (const c of this.#counts) this.#total += c;
    this.#table = this.#fixed ? unigramTable(this.#counts, TABLE_SIZE) : new Int32Array(RESERVOIR_SIZE);
    this.#filled = this.#fixed ? this.#table.length : 0;
  }

  /** The ids of a sentence that survive subsampling (online counts are updated first). */
  keep(ids: Int32Array): number[] {
    if (!this.#fixed) for (const id of ids) this.#observe(id);
    const t = this.#options.subsample;
    if (t === 0 || this.#total === 0) return [...ids];
    return [...ids].filter((id) => {
      const f = this.#counts[id]! / this.#total;
      return f === 0 || this.#rng.next() < (Math.sqrt(f / t) + 1) * (t / f);
    });
  }

  /** `negatives` ids from the noise distribution, avoiding `positive` where the table allows. */
  negatives(positive: number): number[] {
    const out: number[] = [];
    for (let k = 0; k < this.#options.negatives; k++) {
      let id = this.#draw();
      for (let tries = 0; id === positive && tries < 4; tries++) id = this.#draw();
      out.push(id);
    }
    return out;
  }

  /** The window radius of one position, drawn from 1..window as the C code does (near words weigh more). */
  radius(): number {
    return 1 + this.#rng.int(this.#options.window);
  }

  #draw(): number {
    if (this.#filled === 0) return this.#rng.int(this.#options.vocabSize);
    return this.#table[this.#rng.int(this.#filled)]!;
  }

  #observe(id: number): void {
    this.#counts[id]!++;
    this.#total++;
    // Reservoir sampling keeps the table a uniform sample of every token seen, i.e. a unigram sample.
    this.#seen++;
    if (this.#filled < this.#table.length) this.#table[this.#filled++] = id;
    else {
      const slot = this.#rng.int(this.#seen);
      if (slot < this.#table.length) this.#table[slot] = id;
    }
  }
}

/** The C code's unigram table: id i fills a share of `size` slots proportional to count_i^0.75. */
export function unigramTable(counts: ArrayLike<number>, size: number): Int32Array {
  const table = new Int32Array(size);
  let norm = 0;
  for (let i = 0; i < counts.length; i++) norm += Math.pow(counts[i]!, 0.75);
  if (norm === 0) return table.map((_, k) => k % counts.length);
  let id = 0;
  while (counts[id] === 0) id++;
  let cumulative = Math.pow(counts[id]!, 0.75) / norm;
  for (let k = 0; k < size; k++) {
    table[k] = id;
    if (k / size > cumulative && id < counts.length - 1) {
      id++;
      while (counts[id] === 0 && id < counts.length - 1) id++;
      cumulative += Math.pow(counts[id]!, 0.75) / norm;
    }
  }
  return table;
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
