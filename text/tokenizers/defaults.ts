import { bertTemplate } from './postProcess.ts';
import { SPECIAL_TOKENS, specialAddedTokens, type TokenizerParts } from './Tokenizer.ts';
import type { DecoderJson } from './tokenizerJson.ts';

/** Options shared by the trainers here. */
export interface TrainTextOptions {
  /** Lowercase (and strip accents from) text before counting and encoding, like bert-base-uncased. Default true. */
  readonly lowercase?: boolean;
}

/** BERT's pipeline around a freshly trained vocabulary whose ids 0..4 are {@link SPECIAL_TOKENS}. */
export function bertParts(
  vocab: ReadonlyMap<string, number>,
  lowercase: boolean,
  decoder: DecoderJson | null,
): TokenizerParts {
  return {
    vocab,
    unkToken: '[UNK]',
    addedTokens: specialAddedTokens(),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase,
    },
    preTokenizer: { type: 'BertPreTokenizer' },
    postProcessor: bertTemplate(['[CLS]', 2], ['[SEP]', 3]),
    decoder,
    truncation: null,
    padding: null,
  };
}

/** A vocabulary map that starts with the special tokens at ids 0..4. */
export function specialVocab(): Map<string, number> {
  return new Map(SPECIAL_TOKENS.map((t, i) => [t, i]));
}
