import { textSetupOf } from './textTaskConfig.ts';
import * as tf from '@tensorflow/tfjs';
import { defer, mergeMap, type Observable, type OperatorFunction } from 'rxjs';
import type { PretextTask, SamplerContext } from '../task.ts';
import type { Sample } from '../../pipeline/sample.ts';
import type { TokenizedSentence } from '../../text/tokenizedSentence.ts';
import {
  WordSampler,
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

/**
 * The CBOW sampler: after subsampling, every position of a sentence with at least one context word becomes one
 * sample: inputs context ids (shape [2 * window], padded), their mask (1 where a context word is, shape
 * [2 * window]) and `[word, negative_1..K]` (shape [1 + K]); label `[1, 0 x K]`.
 */
export function sampleCbow(
  context: SamplerContext,
  options: ResolvedWord2vecOptions,
): OperatorFunction<TokenizedSentence, Sample> {
  const label = word2vecLabel(options.negatives);
  const width = 2 * options.window;
  requireCounts(options);
  return (sentences: Observable<TokenizedSentence>) =>
    defer(() => {
      const words = new WordSampler(options, context.rng);
      return sentences.pipe(
        mergeMap((sentence): Sample[] => {
          const kept = words.keep(sentence.ids);
          const samples: Sample[] = [];
          kept.forEach((center, i) => {
            const b = words.radius();
            const ids = new Float32Array(width);
            const mask = new Float32Array(width);
            let n = 0;
            for (let j = Math.max(0, i - b); j <= Math.min(kept.length - 1, i + b); j++) {
              if (j === i) continue;
              ids[n] = kept[j]!;
              mask[n++] = 1;
            }
            if (n === 0) return;
            samples.push({
              inputs: [ids, mask, words.targets(center)],
              label,
              source: sentence.source,
            });
          });
          return samples;
        }),
      );
    });
}

/**
 * Continuous bag of words with negative sampling (Mikolov et al. 2013): predict the word from the mean of its
 * context words' vectors (the shared encoder's token embeddings), against K noise words drawn from unigram^0.75
 * after subsampling frequent words, both from whole-corpus counts as in the paper. Predictions are logits
 * `[batch, 1 + K]`; the metric is the fraction whose true word outscores all negatives (chance 1 / (1 + K)). The
 * paper's CBOW reads a window of 4 words on each side; `window` here is the largest radius of the dynamic window
 * (default 5, the C code's).
 *
 * @example
 * const task = createCbowTask({ vocabSize: tokenizer.vocabSize, window: 4, counts: countTokens(sentences, tokenizer.vocabSize) });
 */
export function createCbowTask(options: Word2vecOptions = {}): PretextTask<TokenizedSentence> {
  const resolved = validateWord2vecOptions(options);
  const width = 2 * resolved.window;
  return {
    name: 'cbow',
    family: 'text-context',
    paper:
      'Mikolov, Chen, Corrado, Dean. Efficient Estimation of Word Representations in Vector Space. ICLR Workshop 2013',
    reads: 'sentences',
    needsTokenCounts: true,
    configure: (setup) => {
      const { vocabulary, config } = textSetupOf(setup, 'cbow');
      return createCbowTask({
        ...options,
        vocabSize: vocabulary.vocabSize,
        embeddingSize: config.embeddingSize,
        counts: setup.tokenCounts ?? options.counts,
      });
    },
    sampler: (context) => sampleCbow(context, resolved),
    inputShapes: () => [[width], [width], [1 + resolved.negatives]],
    labelShape: () => [1 + resolved.negatives],
    build: (encoder, rng) => ({ head: buildContextHead(resolved, rng, 'cbow_head') }),
    forward(encoder, { head }, [contextIds, mask, targets], training) {
      return tf.tidy(() => {
        const vectors = lookupWords(wordTable(encoder, resolved), contextIds!); // [batch, 2W, E]
        const summed = tf.sum(tf.mul(vectors, tf.expandDims(mask!, -1)), 1); // [batch, E]
        const words = tf.div(summed, tf.maximum(tf.sum(mask!, 1, true), 1)) as tf.Tensor2D;
        return scoreTargets(head, words, targets!, training);
      });
    },
    loss: negativeSamplingLoss,
    metric: positiveRankAccuracy,
  };
}

/** CBOW with the default options (a 30000-id vocabulary, 64-d vectors); a run configures it with its counts. */
export const cbow = createCbowTask();
