import { textSetupOf } from './textTaskConfig.ts';
import * as tf from '@tensorflow/tfjs';
import type { OperatorFunction } from 'rxjs';
import { operate } from '../../core/operate.ts';
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
  // Samples go downstream as they are drawn (millions of them: no array of a sentence's samples, no inner stream).
  return operate<TokenizedSentence, Sample>((subscriber) => {
    const words = new WordSampler(options, context.rng);
    return {
      next: (sentence) => {
        const kept = words.keep(sentence.ids);
        for (let i = 0; i < kept.length && !subscriber.closed; i++) {
          const b = words.radius();
          // The samples of one word share its input array, as all share the label (samples are read-only).
          const center = Float32Array.of(kept[i]!);
          for (let j = Math.max(0, i - b); j <= Math.min(kept.length - 1, i + b); j++) {
            if (j !== i) subscriber.next({ inputs: [center, words.targets(kept[j]!)], label, source: sentence.source });
          }
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
  return {
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
}

/** Skip-gram with the default options (a 30000-id vocabulary, 64-d vectors); a run configures it with its counts. */
export const skipgram = createSkipgramTask();
