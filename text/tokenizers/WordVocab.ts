import { OptionError } from '../../core/errors.ts';
import { countWords, type TextSource } from './countWords.ts';
import { bertParts, specialVocab, type TrainTextOptions } from './defaults.ts';
import { SPECIAL_TOKENS, Tokenizer, type TokenizerParts } from './Tokenizer.ts';
import type { WordLevelModelJson } from './tokenizerJson.ts';

/** Options of {@link WordVocab.train}. */
export interface WordVocabOptions extends TrainTextOptions {
  /** Most ids, special tokens included. Default 30000. */
  readonly maxSize?: number;
  /** Words seen fewer times are left out (they encode as [UNK]). Default 1. */
  readonly minCount?: number;
}

/**
 * A word-level vocabulary: each word (after BERT normalization and pre-tokenization) is one token, unknown words
 * are [UNK]. Saved as a Hugging Face `WordLevel` model.
 *
 * @example
 * const vocab = await WordVocab.train(['the cat sat', 'the dog'], { maxSize: 100 });
 * vocab.tokenize('The cat'); // ['the', 'cat']
 */
export class WordVocab extends Tokenizer {
  constructor(parts: TokenizerParts) {
    super(parts);
  }

  /** Keeps the `maxSize - 5` most frequent words (ties in code-point order) after the special tokens. */
  static async train(source: TextSource, options: WordVocabOptions = {}): Promise<WordVocab> {
    const maxSize = options.maxSize ?? 30000;
    const minCount = options.minCount ?? 1;
    if (!Number.isInteger(maxSize) || maxSize <= SPECIAL_TOKENS.length)
      throw new OptionError('maxSize', maxSize, `an integer > ${SPECIAL_TOKENS.length} (the special tokens)`);
    if (!Number.isInteger(minCount) || minCount < 1) throw new OptionError('minCount', minCount, 'an integer >= 1');
    const lowercase = options.lowercase ?? true;
    // An empty tokenizer with the same pipeline splits the training text exactly as encoding will.
    const splitter = new WordVocab(bertParts(specialVocab(), lowercase, null));
    const counts = await countWords(source, (t) => splitter.words(t));
    const vocab = specialVocab();
    const ranked = [...counts]
      .filter(([w, c]) => c >= minCount && !vocab.has(w))
      .sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1));
    for (const [word] of ranked.slice(0, maxSize - vocab.size)) vocab.set(word, vocab.size);
    return new WordVocab(bertParts(vocab, lowercase, null));
  }

  protected tokenizeWord(word: string, out: string[]): void {
    out.push(this.tokenToId(word) === undefined ? this.parts.unkToken : word);
  }

  protected modelJson(): WordLevelModelJson {
    return { type: 'WordLevel', vocab: this.vocabJson(), unk_token: this.parts.unkToken };
  }
}
