import { textSetupOf } from './textTaskConfig.ts';
import * as tf from '@tensorflow/tfjs';
import type { OperatorFunction } from 'rxjs';
import { operate } from '../../core/operate.ts';
import type { PretextTask, SamplerContext } from '../task.ts';
import { mulberry32, RNG_STEP, type Rng } from '../../core/rng.ts';
import type { Sample } from '../../pipeline/sample.ts';
import type { TokenizedSentence } from '../../text/tokenizedSentence.ts';
import {
  keepProbabilities,
  NoiseDistribution,
  requireCounts,
  buildContextHead,
  lookupWords,
  negativeSamplingLoss,
  positiveRankAccuracy,
  scoreTargets,
  validateWord2vecOptions,
  word2vecLabel,
  wordTable,
  type ResolvedWord2vecOptions,
  type Word2vecOptions,
} from './word2vec.ts';

/** Token ids in a typed array: uint16 while the vocabulary fits it, else int32. */
export type IdArray = Uint16Array | Int32Array;

/** {@link RNG_STEP} as a signed int32, for the draw loop's int32 state. */
const STEP = RNG_STEP | 0;

/**
 * The skip-grams of sentences drawn into flat columns, one sentence at a time: `centers` (one id a row) and
 * `targets` (`[context, negative_1..K]`, 1 + K ids a row), as uint16 when the vocabulary has at most 65,536 ids (else
 * int32): process-corpus stores them so, 2 bytes an id instead of a float's 4. The one place skip-grams
 * are drawn: {@link sampleSkipgrams} turns the rows into samples, process-corpus copies them into its shard
 * columns whole (no object per sample), so both draw the same numbers in the same order.
 */
export class SkipgramDraws {
  readonly width: number;
  readonly #rng: Rng;
  readonly #window: number;
  /** Keep probability of each id (subsampling), and the alias table of the noise distribution. */
  readonly #keep: Float64Array;
  readonly #accept: Float64Array;
  readonly #alias: Int32Array;
  #kept = new Int32Array(64);
  /** Row r's word; valid for rows below {@link length} until the next {@link draw}. */
  centers: IdArray;
  /** Row r's `[context, negatives]` at `r * width`. */
  targets: IdArray;
  length = 0;
  readonly #ids: new (n: number) => IdArray;

  constructor(options: ResolvedWord2vecOptions, rng: Rng) {
    const counts = requireCounts(options);
    const noise = new NoiseDistribution(counts);
    this.#rng = rng;
    this.#window = options.window;
    this.#keep = keepProbabilities(counts, options.subsample);
    this.#accept = noise.accept;
    this.#alias = noise.alias;
    this.width = 1 + options.negatives;
    this.#ids = counts.length <= 0x10000 ? Uint16Array : Int32Array;
    this.centers = new this.#ids(1024);
    this.targets = new this.#ids(1024 * this.width);
  }

  /**
   * Draws the skip-grams of one sentence: after subsampling, every (word, context word within a radius drawn from
   * 1..window for that word) pair, in word then context order; the negatives of a row drawn from the noise
   * distribution, one equal to the context word drawn again up to 4 times. Returns the row count (also
   * {@link length}). The numbers are those {@link WordSampler}'s keep, radius and targets draw in that order; the
   * generator runs inline here (millions of draws), its state handed back at the end.
   */
  draw(ids: Int32Array): number {
    if (this.#kept.length < ids.length) this.#kept = new Int32Array(2 * ids.length);
    const kept = this.#kept;
    const keep = this.#keep;
    const accept = this.#accept;
    const alias = this.#alias;
    const slots = accept.length;
    const window = this.#window;
    const width = this.width;
    // The state as a signed int32 (same bits as the generator's uint32): V8 keeps it a small integer, where the
    // uint32 would be a heap double above 2^31; that halves the cost of the 12 draws a row.
    let state = this.#rng.state | 0;
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const p = keep[id] ?? 1;
      if (p >= 1 || mulberry32((state = (state + STEP) | 0)) < p) kept[n++] = id;
    }
    let rows = 0;
    for (let i = 0; i < n; i++) {
      const b = 1 + Math.floor(mulberry32((state = (state + STEP) | 0)) * window);
      const from = Math.max(0, i - b);
      const to = Math.min(n - 1, i + b);
      this.#reserve(rows + to - from);
      const centers = this.centers;
      const targets = this.targets;
      const center = kept[i]!;
      for (let j = from; j <= to; j++) {
        if (j === i) continue;
        const positive = kept[j]!;
        centers[rows] = center;
        let at = rows * width;
        targets[at] = positive;
        for (let k = 1; k < width; k++) {
          let id = -1;
          for (let tries = 0; tries < 5 && (tries === 0 || id === positive); tries++) {
            const slot = Math.floor(mulberry32((state = (state + STEP) | 0)) * slots);
            id = mulberry32((state = (state + STEP) | 0)) < accept[slot]! ? slot : alias[slot]!;
          }
          targets[++at] = id;
        }
        rows++;
      }
    }
    this.#rng.state = state >>> 0;
    return (this.length = rows);
  }

  #reserve(rows: number): void {
    if (rows <= this.centers.length) return;
    const size = Math.max(rows, 2 * this.centers.length);
    const centers = new this.#ids(size);
    centers.set(this.centers);
    const targets = new this.#ids(size * this.width);
    targets.set(this.targets);
    this.centers = centers;
    this.targets = targets;
  }
}

/** Options of the skip-gram tasks made by {@link createSkipgramTask}, for {@link skipgramDrawsOf}. */
const resolvedOf = new WeakMap<PretextTask<TokenizedSentence>, ResolvedWord2vecOptions>();

/**
 * A {@link SkipgramDraws} for a skip-gram task (as `configure` made it) and a seeded generator: the rows its
 * sampler would emit with that generator. Undefined for any other task.
 */
export function skipgramDrawsOf(task: PretextTask<never>, rng: Rng): SkipgramDraws | undefined {
  const options = resolvedOf.get(task as PretextTask<TokenizedSentence>);
  return options ? new SkipgramDraws(options, rng) : undefined;
}

/**
 * The skip-gram sampler: after subsampling, every (word, context word within a dynamic window) pair of a sentence
 * becomes one sample: inputs `[word]` (shape [1]) and `[context, negative_1..K]` (shape [1 + K]); label
 * `[1, 0 x K]`.
 */
export function sampleSkipgrams(
  context: SamplerContext,
  options: ResolvedWord2vecOptions,
): OperatorFunction<TokenizedSentence, Sample> {
  const label = word2vecLabel(options.negatives);
  requireCounts(options);
  // Samples go downstream sentence by sentence (millions of them: no inner stream).
  return operate<TokenizedSentence, Sample>((subscriber) => {
    const draws = new SkipgramDraws(options, context.rng);
    const width = draws.width;
    return {
      next: (sentence) => {
        const rows = draws.draw(sentence.ids);
        const { centers, targets } = draws;
        let center = new Float32Array(0);
        for (let r = 0; r < rows && !subscriber.closed; r++) {
          // The samples of one word share its input array, as all share the label (samples are read-only).
          if (r === 0 || centers[r] !== centers[r - 1]) center = Float32Array.of(centers[r]!);
          subscriber.next({
            inputs: [center, Float32Array.from(targets.subarray(r * width, (r + 1) * width))],
            label,
            source: sentence.source,
          });
        }
      },
    };
  });
}

/**
 * Skip-gram with negative sampling (Mikolov et al. 2013): predict each context word from the word, against K
 * words drawn from the unigram^0.75 noise distribution, after subsampling frequent words. The word vector is the
 * shared encoder's token embedding; the head holds the context vectors; predictions are logits `[batch, 1 + K]`.
 * The metric is the fraction of samples whose true context word outscores all K negatives (chance 1 / (1 + K)).
 *
 * As in the paper, the noise distribution and subsampling read whole-corpus counts (`counts`; a run counts its
 * corpus and passes them through `configure`); what still differs from the C code is listed in word2vec.ts.
 * The paper trains on billions of words with vectors of 300; runs here are small (64-d by default).
 *
 * @example
 * const task = createSkipgramTask({ vocabSize: tokenizer.vocabSize, embeddingSize: 64, counts: countTokens(sentences, tokenizer.vocabSize) });
 * from(sentences).pipe(task.sampler({ rng: new Rng(1) }));
 */
export function createSkipgramTask(options: Word2vecOptions = {}): PretextTask<TokenizedSentence> {
  const resolved = validateWord2vecOptions(options);
  const task: PretextTask<TokenizedSentence> = {
    name: 'skipgram',
    family: 'text-context',
    paper:
      'Mikolov, Sutskever, Chen, Corrado, Dean. Distributed Representations of Words and Phrases and their Compositionality. NeurIPS 2013',
    reads: 'sentences',
    needsTokenCounts: true,
    configure: (setup) => {
      const { vocabulary, config } = textSetupOf(setup, 'skipgram');
      return createSkipgramTask({
        ...options,
        vocabSize: vocabulary.vocabSize,
        embeddingSize: config.embeddingSize,
        counts: setup.tokenCounts ?? options.counts,
      });
    },
    sampler: (context) => sampleSkipgrams(context, resolved),
    inputShapes: () => [[1], [1 + resolved.negatives]],
    labelShape: () => [1 + resolved.negatives],
    build: (encoder, rng) => ({ head: buildContextHead(resolved, rng, 'skipgram_head') }),
    forward(encoder, { head }, [centers, targets], training) {
      return tf.tidy(() => {
        const words = tf.squeeze(lookupWords(wordTable(encoder, resolved), centers!), [1]) as tf.Tensor2D; // [batch, E]
        return scoreTargets(head, words, targets!, training);
      });
    },
    loss: negativeSamplingLoss,
    metric: positiveRankAccuracy,
  };
  resolvedOf.set(task, resolved);
  return task;
}

/** Skip-gram with the default options (a 30000-id vocabulary, 64-d vectors); a run configures it with its counts. */
export const skipgram = createSkipgramTask();
