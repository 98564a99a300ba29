import { mlpHead } from '../../models/heads.ts';
import { textSetupOf } from './textTaskConfig.ts';
import * as tf from '@tensorflow/tfjs';
import { defer, mergeMap, type Observable, type OperatorFunction } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import type { Rng } from '../../core/rng.ts';
import { encodeText } from '../../models/textEncoder.ts';
import { type PretextTask, type SamplerContext, featureSizeOf } from '../task.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { binaryAccuracy } from '../losses/binaryCrossEntropy.ts';
import { binaryCrossEntropy } from '../losses/binaryCrossEntropy.ts';
import {
  checkPositiveInteger,
  checkVocabulary,
  defaultVocabulary,
  fitIds,
  type TextVocabulary,
  type TokenizedSentence,
} from '../../text/tokenizedSentence.ts';

/** Options of the next-sentence prediction task. */
export interface NspOptions {
  /** The tokenizer's ids. Default: this project's layout with 30000 ids. */
  vocabulary?: TextVocabulary;
  /** Tokens per sentence, [CLS] and [SEP] included. Default 32. */
  maxLength?: number;
  /** Recent sentences kept to draw random (negative) sentences from; bounds memory. Default 1000. */
  poolSize?: number;
  /** Fraction of pairs whose second sentence is the true next one. Default 0.5, as in BERT. */
  positiveFraction?: number;
}

type ResolvedNspOptions = Required<NspOptions>;

function validateNspOptions(options: NspOptions): ResolvedNspOptions {
  const { vocabulary = defaultVocabulary(), maxLength = 32, poolSize = 1000, positiveFraction = 0.5 } = options;
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
  return fitIds([clsId, ...ids.subarray(0, options.maxLength - 2), sepId], options.maxLength, padId);
}

/** A random sentence of the pool from another document than `document`, if one turns up in a few draws. */
function randomOtherSentence(pool: TokenizedSentence[], document: number, rng: Rng): TokenizedSentence | undefined {
  for (let tries = 0; tries < 10 && pool.length > 0; tries++) {
    const s = pool[rng.int(pool.length)]!;
    if (s.document !== document) return s;
  }
  return undefined;
}

/**
 * The sampler: for each pair of consecutive non-empty sentences (A, B) of one document, emits (A, B) labelled 1
 * with probability `positiveFraction`, else (A, R) labelled 0 with R a random sentence of another document, drawn
 * from a bounded pool of recent sentences (randomly replaced, so it spans documents). Inputs two `[maxLength]` id
 * arrays; label `[1]`.
 */
export function sampleSentencePairs(
  context: SamplerContext,
  options: ResolvedNspOptions,
): OperatorFunction<TokenizedSentence, Sample> {
  const { rng } = context;
  return (sentences: Observable<TokenizedSentence>) =>
    defer(() => {
      let previous: TokenizedSentence | undefined;
      const pool: TokenizedSentence[] = [];
      return sentences.pipe(
        mergeMap((sentence): Sample[] => {
          if (sentence.ids.length === 0) return [];
          const out: Sample[] = [];
          if (previous && previous.document === sentence.document) {
            const negative =
              rng.next() >= options.positiveFraction ? randomOtherSentence(pool, previous.document, rng) : undefined;
            const second = negative ?? sentence;
            out.push({
              inputs: [packSentence(previous.ids, options), packSentence(second.ids, options)],
              label: Float32Array.of(negative ? 0 : 1),
              source: sentence.source,
            });
          }
          if (pool.length < options.poolSize) pool.push(sentence);
          else pool[rng.int(pool.length)] = sentence;
          previous = sentence;
          return out;
        }),
      );
    });
}

/**
 * Next-sentence prediction (BERT, Devlin et al. 2019): is B the sentence that follows A in its document (50%), or
 * a random sentence of another document (50%)? BERT packs `[CLS] A [SEP] B [SEP]` into one sequence; a GRU
 * encoder reads the two better apart, so here the shared encoder embeds each (siamese) and the head reads
 * `[a, b, a * b, |a - b|]` `[batch, 4 * featureSize]` (Conneau et al. 2017's pair features) -> logit `[batch, 1]`.
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
  };
}

/** Next-sentence prediction with the default options. */
export const nsp = createNspTask();
