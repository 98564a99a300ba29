import { OptionError } from '../../core/errors.ts';
import { countWords, type TextSource } from './countWords.ts';
import { bertParts, specialVocab, type TrainTextOptions } from './defaults.ts';
import { SPECIAL_TOKENS, Tokenizer, type TokenizerParts } from './Tokenizer.ts';
import { trainWordPieceVocab } from './trainWordPiece.ts';
import type { WordPieceModelJson } from './tokenizerJson.ts';

/** Options of {@link WordPiece.train}. */
export interface WordPieceOptions extends TrainTextOptions {
  /** Vocabulary size to reach, special tokens and alphabet included. Default 8000. */
  readonly vocabSize?: number;
  /** A merge needs a pair seen at least this often. Default 2. */
  readonly minCount?: number;
  /** Most characters kept in the alphabet (by frequency). Default 1000. */
  readonly limitAlphabet?: number;
}

/** How a loaded or trained WordPiece model splits words. */
export interface WordPieceModel {
  /** Prefix of pieces that continue a word. Default `##`. */
  readonly continuingSubwordPrefix: string;
  /** Words longer than this (in characters) become [UNK] whole. Default 100. */
  readonly maxInputCharsPerWord: number;
  /** Remember the pieces of recent words (not saved to tokenizer.json). Default true. */
  readonly cacheWords: boolean;
}

/** Cached words; English text repeats its words so often that most words are tokenized once. */
const CACHE_SIZE = 20_000;

/**
 * A BERT-style WordPiece tokenizer (Wu et al. 2016, "Google's Neural Machine Translation System"; Devlin et al.
 * 2019, BERT): words are split greedily into the longest pieces in the vocabulary, pieces after the first carry
 * `##`, and a word with no split becomes [UNK]. Reads and writes Hugging Face tokenizer.json.
 *
 * @example
 * const wp = await WordPiece.train(lines, { vocabSize: 8000 });
 * wp.tokenize('unaffable'); // e.g. ['un', '##aff', '##able']
 * wp.decode(wp.encode('Hello there')); // 'hello there'
 */
export class WordPiece extends Tokenizer {
  readonly model: WordPieceModel;
  #cache = new Map<string, readonly string[]>();

  constructor(parts: TokenizerParts, model: Partial<WordPieceModel> = {}) {
    super(parts);
    this.model = {
      continuingSubwordPrefix: model.continuingSubwordPrefix ?? '##',
      maxInputCharsPerWord: model.maxInputCharsPerWord ?? 100,
      cacheWords: model.cacheWords ?? true,
    };
  }

  /** Counts the words of `source` and learns a vocabulary of `vocabSize` by likelihood merges (see trainWordPieceVocab). */
  static async train(source: TextSource, options: WordPieceOptions = {}): Promise<WordPiece> {
    const vocabSize = options.vocabSize ?? 8000;
    const minCount = options.minCount ?? 2;
    const limitAlphabet = options.limitAlphabet ?? 1000;
    if (!Number.isInteger(vocabSize) || vocabSize <= SPECIAL_TOKENS.length)
      throw new OptionError('vocabSize', vocabSize, `an integer > ${SPECIAL_TOKENS.length} (the special tokens)`);
    if (!Number.isInteger(minCount) || minCount < 1) throw new OptionError('minCount', minCount, 'an integer >= 1');
    if (!Number.isInteger(limitAlphabet) || limitAlphabet < 1)
      throw new OptionError('limitAlphabet', limitAlphabet, 'an integer >= 1');
    const lowercase = options.lowercase ?? true;
    const decoder = { type: 'WordPiece', prefix: '##', cleanup: true } as const;
    const splitter = new WordPiece(bertParts(specialVocab(), lowercase, decoder));
    const counts = await countWords(source, (t) => splitter.words(t));
    const vocab = specialVocab();
    for (const token of trainWordPieceVocab(counts, vocab.size, { vocabSize, minCount, limitAlphabet, prefix: '##' })) {
      if (!vocab.has(token)) vocab.set(token, vocab.size);
    }
    return new WordPiece(bertParts(vocab, lowercase, decoder));
  }

  protected override get cachesWords(): boolean {
    return this.model.cacheWords;
  }

  protected tokenizeWord(word: string, out: string[]): void {
    if (!this.model.cacheWords) {
      for (const t of this.#split(word)) out.push(t);
      return;
    }
    const cached = this.#cache.get(word);
    if (cached) {
      for (const t of cached) out.push(t);
      return;
    }
    const pieces = this.#split(word);
    // A full cache is dropped whole: cheaper than LRU bookkeeping, and the frequent words come back at once.
    if (this.#cache.size >= CACHE_SIZE) this.#cache.clear();
    this.#cache.set(word, pieces);
    for (const t of pieces) out.push(t);
  }

  /** Greedy longest-match-first, as BERT's reference WordpieceTokenizer and the Rust crate do. */
  #split(word: string): string[] {
    const { continuingSubwordPrefix: prefix, maxInputCharsPerWord } = this.model;
    if (word.length > maxInputCharsPerWord && [...word].length > maxInputCharsPerWord) return [this.parts.unkToken];
    const pieces: string[] = [];
    let start = 0;
    while (start < word.length) {
      let end = word.length;
      let found: string | undefined;
      while (start < end) {
        const sub = start > 0 ? prefix + word.slice(start, end) : word.slice(start, end);
        if (this.parts.vocab.has(sub)) {
          found = sub;
          break;
        }
        end--;
        // Never cut between the two halves of a surrogate pair.
        if (end > start && isLowSurrogate(word.charCodeAt(end))) end--;
      }
      if (found === undefined) return [this.parts.unkToken];
      pieces.push(found);
      start = end;
    }
    return pieces;
  }

  protected modelJson(): WordPieceModelJson {
    return {
      type: 'WordPiece',
      unk_token: this.parts.unkToken,
      continuing_subword_prefix: this.model.continuingSubwordPrefix,
      max_input_chars_per_word: this.model.maxInputCharsPerWord,
      vocab: this.vocabJson(),
    };
  }
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
