import { emptyCorpusStats, readLines } from '../text/readCorpus.ts';
import type { Tokenizer } from '../text/tokenizers/Tokenizer.ts';
import { WordPiece } from '../text/tokenizers/WordPiece.ts';
import { WordVocab } from '../text/tokenizers/WordVocab.ts';
import { OptionError, StoppedError } from '../core/errors.ts';
import { readDialogueItems, TEXT_PIECE_BYTES, type TextSourceOptions } from '../text/sources.ts';
import { observableValues } from '../core/asyncValues.ts';

/** Options of {@link trainCorpusTokenizer}. */
export interface CorpusTokenizerOptions extends TextSourceOptions {
  /** Vocabulary size. Default 8000. */
  vocabSize?: number;
  /**
   * `wordpiece` (subwords, no unknown words) or `word` (whole lowercased words seen at least 3 times, the rest
   * [UNK]). Default: `word` when only dialogues are given, else `wordpiece`. On DailyDialog, dialogue-order learned
   * better with words (800 steps, same seed: original vs shuffled AUC 0.80 with words, 0.71 with WordPiece).
   */
  model?: 'wordpiece' | 'word';
  /** Stops reading the corpus: training then fails with {@link StoppedError}. */
  signal?: AbortSignal;
  /** Called every `progressEveryMs` while the corpus is read, with the bytes and lines read so far. */
  onProgress?: (progress: { bytes: number; lines: number }) => void;
  /** Milliseconds between progress calls. Default 1000. */
  progressEveryMs?: number;
}

/** Trains a tokenizer (see {@link CorpusTokenizerOptions.model}) on the lines of the text inputs and the turns of the dialogue inputs. */
export async function trainCorpusTokenizer(options: CorpusTokenizerOptions): Promise<Tokenizer> {
  const { text = [], dialogues = [] } = options;
  const stats = emptyCorpusStats();
  let lastReport = performance.now();
  const check = (): void => {
    if (options.signal?.aborted) throw new StoppedError('while training the tokenizer (nothing was trained)');
    if (options.onProgress && performance.now() - lastReport >= (options.progressEveryMs ?? 1000)) {
      lastReport = performance.now();
      options.onProgress({ bytes: stats.bytes, lines: stats.lines });
    }
  };
  async function* texts(): AsyncGenerator<string> {
    if (text.length > 0) {
      const read = { onInvalid: options.onInvalid, stats, maxLineBytes: TEXT_PIECE_BYTES };
      for await (const line of observableValues(readLines(text, read))) {
        check();
        yield line.text;
      }
    }
    if (dialogues.length > 0) {
      for await (const d of observableValues(readDialogueItems(dialogues, { ...options, shard: undefined }))) {
        check();
        yield* d.turns;
      }
    }
    check();
  }
  const model = options.model ?? (text.length === 0 && dialogues.length > 0 ? 'word' : 'wordpiece');
  if (model !== 'word' && model !== 'wordpiece')
    throw new OptionError('--tokenizer-model', model, "'word' or 'wordpiece'");
  const vocabSize = options.vocabSize ?? 8000;
  return model === 'word'
    ? WordVocab.train(texts(), { maxSize: vocabSize, minCount: 3 })
    : WordPiece.train(texts(), { vocabSize });
}
