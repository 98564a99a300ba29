/**
 * Shared pieces of the text tasks.
 *
 * The pattern every text and dialogue task follows: a task that needs to know its vocabulary (ids of [MASK],
 * [PAD], the vocabulary size, a tokenizer for dialogues) is made by a factory, `createMlmTask({ vocabulary,
 * maxLength })`, that validates its options and returns a plain {@link PretextTask}; the registry holds the
 * factory's result with defaults (this project's special-token layout, ids 0..4, and a 30000-id vocabulary, what
 * `WordVocab.train` makes by default). Sentence tasks consume {@link TokenizedSentence}s, made upstream from text
 * by {@link tokenizeSentences}; the dialogue task consumes `Dialogue`s and takes its tokenizer as an option.
 * Every sample holds ids as floats (samples are Float32Arrays); the encoder casts them back.
 */
import { map, type OperatorFunction } from 'rxjs';
import { OptionError } from '../core/errors.ts';
import type { Tokenizer } from './tokenizers/Tokenizer.ts';
import { SPECIAL_TOKENS } from './tokenizers/Tokenizer.ts';

/** One tokenized sentence of a corpus: what the sentence-level text samplers consume. */
export interface TokenizedSentence {
  /** Token ids, without special tokens. */
  readonly ids: Int32Array;
  /** Which document the sentence belongs to: consecutive sentences of one document share it (NSP, CPC). */
  readonly document: number;
  /** Where it came from (file:line), for error messages. */
  readonly source?: string;
}

/** The ids a text task needs to know about its tokenizer. */
export interface TextVocabulary {
  /** Number of ids; every id is below it. */
  readonly vocabSize: number;
  readonly padId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly maskId: number;
  /** Ids never masked, predicted or drawn as random replacements (the special tokens). */
  readonly specialIds: readonly number[];
}

/** The special-token layout of every tokenizer trained here (ids 0..4) with a default-sized vocabulary. */
export function defaultVocabulary(vocabSize = 30000): TextVocabulary {
  const id = (t: (typeof SPECIAL_TOKENS)[number]): number => SPECIAL_TOKENS.indexOf(t);
  return {
    vocabSize,
    padId: id('[PAD]'),
    clsId: id('[CLS]'),
    sepId: id('[SEP]'),
    maskId: id('[MASK]'),
    specialIds: SPECIAL_TOKENS.map((_, i) => i),
  };
}

/**
 * The {@link TextVocabulary} of a tokenizer.
 *
 * @throws OptionError when the tokenizer lacks [PAD], [CLS], [SEP] or [MASK].
 */
export function vocabularyOf(tokenizer: Tokenizer): TextVocabulary {
  const need = (name: string, id: number | undefined): number => {
    if (id === undefined)
      throw new OptionError(
        'tokenizer',
        name,
        `a tokenizer with a ${name} token (the ones trained here have ${SPECIAL_TOKENS.join(' ')})`,
      );
    return id;
  };
  const specialIds = SPECIAL_TOKENS.map((t) => tokenizer.tokenToId(t)).filter((id): id is number => id !== undefined);
  return {
    vocabSize: tokenizer.vocabSize,
    padId: need('[PAD]', tokenizer.padId),
    clsId: need('[CLS]', tokenizer.clsId),
    sepId: need('[SEP]', tokenizer.sepId),
    maskId: need('[MASK]', tokenizer.maskId),
    specialIds: [...new Set([...specialIds, tokenizer.unkId])],
  };
}

/** A sentence with the document it belongs to, before tokenization. */
export interface SentenceText {
  readonly text: string;
  readonly document: number;
  readonly source?: string;
}

/** An RxJS operator from sentences to their ids (no special tokens); empty sentences are kept as empty ids. */
export function tokenizeSentences(tokenizer: Tokenizer): OperatorFunction<SentenceText, TokenizedSentence> {
  return map((s) => ({
    ids: Int32Array.from(tokenizer.encode(s.text, { addSpecialTokens: false })),
    document: s.document,
    source: s.source,
  }));
}

/** `ids` cut or right-padded with `padId` to exactly `length`, as floats (a sample input). */
export function fitIds(ids: ArrayLike<number>, length: number, padId: number): Float32Array {
  const out = new Float32Array(length).fill(padId);
  for (let i = 0; i < Math.min(length, ids.length); i++) out[i] = ids[i]!;
  return out;
}

/** Checks an option that must be a positive integer (or absent, when a default applies). */
export function checkPositiveInteger(name: string, value: unknown, what = 'a positive integer'): void {
  if (value !== undefined && (!Number.isInteger(value) || (value as number) < 1))
    throw new OptionError(name, value, what);
}

/** Checks a vocabulary: ids in range, vocabSize a positive integer. */
export function checkVocabulary(vocabulary: TextVocabulary): void {
  checkPositiveInteger('vocabulary.vocabSize', vocabulary.vocabSize);
  for (const key of ['padId', 'clsId', 'sepId', 'maskId'] as const) {
    const id = vocabulary[key];
    if (!Number.isInteger(id) || id < 0 || id >= vocabulary.vocabSize)
      throw new OptionError(`vocabulary.${key}`, id, `an id in [0, ${vocabulary.vocabSize})`);
  }
}
