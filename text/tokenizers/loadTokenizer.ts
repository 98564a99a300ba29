import { readFile } from 'node:fs/promises';
import { DataFormatError, ModelIOError } from '../../core/errors.ts';
import type { TokenizerParts } from './Tokenizer.ts';
import type { AddedTokenJson, TokenizerJson } from './tokenizerJson.ts';
import { WordPiece } from './WordPiece.ts';
import { WordVocab } from './WordVocab.ts';

/**
 * Builds a tokenizer from parsed Hugging Face tokenizer.json: a `WordPiece` model gives a {@link WordPiece}, a
 * `WordLevel` model a {@link WordVocab}. Special tokens keep the ids the file gives them (bert-base-uncased has
 * [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103).
 *
 * @param source where the JSON came from, named in errors.
 * @throws DataFormatError when a field is missing or a type is not supported.
 */
export function tokenizerFromJson(json: unknown, source = 'tokenizer.json'): WordPiece | WordVocab {
  const j = json as Partial<TokenizerJson> | null;
  const model = j?.model as Partial<TokenizerJson['model']> | undefined;
  if (!j || typeof j !== 'object' || !model || typeof model.vocab !== 'object' || model.vocab === null) {
    throw new DataFormatError(
      source,
      'no model.vocab: not a Hugging Face tokenizer.json (save one with tokenizer.save(path) in Python)',
    );
  }
  if (typeof model.unk_token !== 'string')
    throw new DataFormatError(source, 'model.unk_token is missing (set it, e.g. "[UNK]")');
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(model.vocab)) {
    if (!Number.isInteger(id) || id < 0)
      throw new DataFormatError(
        source,
        `model.vocab[${JSON.stringify(token)}] is ${JSON.stringify(id)}; ids must be integers >= 0`,
      );
    vocab.set(token, id);
  }
  const parts: TokenizerParts = {
    vocab,
    unkToken: model.unk_token,
    addedTokens: (j.added_tokens ?? []).map((t: Partial<AddedTokenJson>) => addedToken(t, source)),
    normalizer: j.normalizer ?? null,
    preTokenizer: j.pre_tokenizer ?? null,
    postProcessor: j.post_processor ?? null,
    decoder: j.decoder ?? null,
    truncation: j.truncation ?? null,
    padding: j.padding ?? null,
    source,
  };
  if (model.type === 'WordPiece' || (model.type === undefined && 'continuing_subword_prefix' in model)) {
    const wp = model as Partial<TokenizerJson['model'] & { type: 'WordPiece' }>;
    return new WordPiece(parts, {
      continuingSubwordPrefix: wp.continuing_subword_prefix,
      maxInputCharsPerWord: wp.max_input_chars_per_word,
    });
  }
  if (model.type === 'WordLevel') return new WordVocab(parts);
  throw new DataFormatError(
    source,
    `model type ${JSON.stringify(model.type)} is not supported (WordPiece and WordLevel are)`,
  );
}

/** Reads a Hugging Face tokenizer.json file (see {@link tokenizerFromJson}). */
export async function loadTokenizer(path: string): Promise<WordPiece | WordVocab> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new ModelIOError(path, 'cannot read tokenizer.json (check the path)', { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new DataFormatError(path, `not valid JSON: ${(cause as Error).message} (re-save the tokenizer)`, { cause });
  }
  return tokenizerFromJson(json, path);
}

function addedToken(t: Partial<AddedTokenJson>, source: string): AddedTokenJson {
  if (typeof t.content !== 'string' || !Number.isInteger(t.id)) {
    throw new DataFormatError(
      source,
      `added_tokens entry ${JSON.stringify(t)} needs an integer id and a string content`,
    );
  }
  return {
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: false,
    ...t,
  } as AddedTokenJson;
}
