import { mlpHead } from '../../models/heads.ts';
import { textSetupOf } from './textTaskConfig.ts';
import * as tf from '@tensorflow/tfjs';
import type { OperatorFunction } from 'rxjs';
import { operate } from '../../core/operate.ts';
import { OptionError } from '../../core/errors.ts';
import type { Rng } from '../../core/rng.ts';
import { encodeText } from '../../models/textEncoder.ts';
import { type PretextTask, type SampleTally, type SamplerContext, featureSizeOf } from '../task.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { binaryAccuracy } from '../losses/binaryCrossEntropy.ts';
import { binaryCrossEntropy } from '../losses/binaryCrossEntropy.ts';
import {
  checkPositiveInteger,
  checkVocabulary,
  defaultVocabulary,
  type TextVocabulary,
  type TokenizedSentence,
} from '../../text/tokenizedSentence.ts';

/** Options of the next-sentence prediction task. */
export interface NspOptions {
  /** The tokenizer's ids. Default: this project's layout with 30000 ids. */
  vocabulary?: TextVocabulary;
  /** Tokens per sentence, [CLS] and [SEP] included. Default 32. */
  maxLength?: number;
  /**
   * Sentences of earlier documents kept to draw negatives from (a uniform sample of everything read so far, see
   * {@link EarlierSentences}); bounds memory. Default 10000.
   */
  poolSize?: number;
  /** Fraction of pairs whose second sentence is the true next one. Default 0.5, as in BERT. */
  positiveFraction?: number;
}

type ResolvedNspOptions = Required<NspOptions>;

function validateNspOptions(options: NspOptions): ResolvedNspOptions {
  const { vocabulary = defaultVocabulary(), maxLength = 32, poolSize = 10000, positiveFraction = 0.5 } = options;
  checkVocabulary(vocabulary);
  checkPositiveInteger('maxLength', maxLength);
  checkPositiveInteger('poolSize', poolSize);
  if (!(positiveFraction > 0 && positiveFraction < 1))
    throw new OptionError('positiveFraction', positiveFraction, 'a fraction in (0, 1), e.g. 0.5');
  return { vocabulary, maxLength, poolSize, positiveFraction };
}

/** `[CLS] ids [SEP]`, cut and padded to maxLength. */
function packSentence(ids: Int32Array, options: ResolvedNspOptions): Float32Array {
  const { clsId, sepId, padId } = options.vocabulary;
  const { maxLength } = options;
  const out = new Float32Array(maxLength);
  if (padId !== 0) out.fill(padId);
  // What fitIds([CLS, ...ids, SEP], maxLength, PAD) gives, without the array: maxLength 1 keeps [CLS] alone.
  const n = Math.max(0, Math.min(ids.length, maxLength - 2));
  out[0] = clsId;
  for (let i = 0; i < n; i++) out[i + 1] = ids[i]!;
  if (n + 1 < maxLength) out[n + 1] = sepId;
  return out;
}

/**
 * A uniform sample of at most `size` sentences of every document read before the current one: reservoir
 * sampling (Vitter's algorithm R, each of n sentences offered so far held with probability size / n), except
 * that the places chosen for the current document's sentences are filled only when that document ends. So every
 * draw is a sentence of another, earlier document, from anywhere in the corpus read so far, and memory holds at
 * most 2 * size sentences whatever the length of the documents. Late in a long corpus the sample changes slowly
 * (the n-th sentence enters with probability size / n), so pooled sentences serve as negatives more often than
 * BERT's draws from the whole corpus would; a larger `poolSize` spreads them.
 */
export class EarlierSentences {
  readonly #size: number;
  readonly #rng: Rng;
  readonly #slots: TokenizedSentence[] = [];
  readonly #pending = new Map<number, TokenizedSentence>();
  #offered = 0;

  constructor(size: number, rng: Rng) {
    this.#size = size;
    this.#rng = rng;
  }

  /** Sentences that draws choose from (all of earlier documents). */
  get size(): number {
    return this.#slots.length;
  }

  /** Offers a sentence of the current document: it may take a place once the document ends. */
  offer(sentence: TokenizedSentence): void {
    const n = ++this.#offered;
    const slot = n <= this.#size ? n - 1 : this.#rng.int(n);
    if (slot < this.#size) this.#pending.set(slot, sentence);
  }

  /** The current document ended: its chosen sentences take their places. */
  endDocument(): void {
    // Places below `size` are filled in order while the sample grows, so each one set here exists or comes next.
    for (const [slot, sentence] of this.#pending) this.#slots[slot] = sentence;
    this.#pending.clear();
  }

  /** A sentence drawn uniformly from the sample, or undefined while no earlier document was read. */
  draw(): TokenizedSentence | undefined {
    return this.#slots.length > 0 ? this.#slots[this.#rng.int(this.#slots.length)] : undefined;
  }
}

/**
 * The sampler: for each pair of consecutive non-empty sentences (A, B) of one document, emits (A, B) labelled 1
 * with probability `positiveFraction`, else (A, R) labelled 0 with R a random sentence of an earlier document
 * ({@link EarlierSentences}). No label is ever changed after the draw: while no earlier document has been read
 * (the first document of each pass), pairs are skipped rather than emitted positive only, so that the labels stay
 * balanced. Inputs two `[maxLength]` id arrays; label `[1]`.
 */
export function sampleSentencePairs(
  context: SamplerContext,
  options: ResolvedNspOptions,
): OperatorFunction<TokenizedSentence, Sample> {
  const { rng } = context;
  return operate<TokenizedSentence, Sample>((subscriber) => {
    let previous: TokenizedSentence | undefined;
    const earlier = new EarlierSentences(options.poolSize, rng);
    return {
      next: (sentence) => {
        if (sentence.ids.length === 0) return;
        if (previous && previous.document !== sentence.document) earlier.endDocument();
        else if (previous && earlier.size > 0) {
          const second = rng.next() < options.positiveFraction ? sentence : earlier.draw()!;
          // Sentences of the pool come from documents that ended; a document id seen again (inputs that are
          // not grouped by document) could still match: such a pair is skipped, never mislabelled.
          if (second === sentence || second.document !== previous.document) {
            subscriber.next({
              inputs: [packSentence(previous.ids, options), packSentence(second.ids, options)],
              label: Float32Array.of(second === sentence ? 1 : 0),
              source: sentence.source,
            });
          }
        }
        earlier.offer(sentence);
        previous = sentence;
      },
    };
  });
}

/** Counts NSP labels: `positives` (B follows A) and `negatives` (B from another document) emitted. */
export function tallyNspLabels(): SampleTally {
  let positives = 0;
  let negatives = 0;
  return {
    add: (sample) => void (sample.label[0]! > 0.5 ? positives++ : negatives++),
    summary: () => ({ positives, negatives }),
  };
}

/**
 * Next-sentence prediction (BERT, Devlin et al. 2019): is B the sentence that follows A in its document (50%), or
 * a random sentence of another document (50%)?
 *
 * What BERT does: it holds the whole corpus in memory as documents, packs `[CLS] A [SEP] B [SEP]` where A and B
 * are spans of several sentences filling up to 512 tokens, and takes a negative B from a random other document.
 * What this does: A and B are single sentences; documents stream (a paragraph of the corpus: lines between blank
 * lines, closed at a file's end and after 64 KiB of lines, see `readSentences`, so a corpus without blank lines
 * reads as documents of about 64 KiB of consecutive lines, never whole); a negative B is a uniform draw from a
 * bounded sample of the sentences of earlier documents ({@link EarlierSentences}), so it is always from another
 * document, and a pair whose negative cannot be drawn yet is skipped, never relabelled. Why the differences
 * remain: a GRU encoder reads the two sentences better apart, so the shared encoder embeds each (siamese) and the
 * head reads `[a, b, a * b, |a - b|]` `[batch, 4 * featureSize]` (Conneau et al. 2017's pair features) -> logit
 * `[batch, 1]`; and streaming with bounded memory means negatives come from documents read before, not after.
 * A run summary reports the labels emitted ({@link tallyNspLabels}).
 *
 * @example
 * const task = createNspTask({ vocabulary: vocabularyOf(tokenizer), maxLength: 32 });
 */
export function createNspTask(options: NspOptions = {}): PretextTask<TokenizedSentence> {
  const resolved = validateNspOptions(options);
  return {
    name: 'nsp',
    family: 'text-context',
    paper:
      'Devlin, Chang, Lee, Toutanova. BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding. NAACL 2019',
    reads: 'sentences',
    configure: (setup) => {
      const { vocabulary, config } = textSetupOf(setup, 'nsp');
      return createNspTask({ ...options, vocabulary, maxLength: config.maxLength });
    },
    sampler: (context) => sampleSentencePairs(context, resolved),
    inputShapes: () => [[resolved.maxLength], [resolved.maxLength]],
    labelShape: () => [1],
    build(encoder, rng) {
      const featureSize = featureSizeOf(encoder);
      const head = mlpHead(
        'nsp_head',
        4 * featureSize,
        [{ units: featureSize, activation: 'relu' }, { units: 1 }],
        rng,
      );
      return { head };
    },
    forward(encoder, { head }, [first, second], training) {
      return tf.tidy(() => {
        const batch = first!.shape[0]!;
        // One encoder pass over both sentences: [2 * batch, maxLength] -> [2 * batch, hidden].
        const { pooled } = encodeText(encoder, tf.concat([first!, second!], 0), training);
        const [a, b] = tf.split(pooled, [batch, batch], 0) as [tf.Tensor2D, tf.Tensor2D];
        return head.apply(tf.concat([a, b, tf.mul(a, b), tf.abs(tf.sub(a, b))], 1), { training }) as tf.Tensor;
      });
    },
    loss: binaryCrossEntropy,
    metric: binaryAccuracy,
    tally: tallyNspLabels,
  };
}

/** Next-sentence prediction with the default options. */
export const nsp = createNspTask();
