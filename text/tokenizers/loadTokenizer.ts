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
  const addedTokens = (j.added_tokens ?? []).map((t: Partial<AddedTokenJson>) => addedToken(t, source));
  const parts: TokenizerParts = {
    vocab,
    unkToken: model.unk_token,
    addedTokens,
    normalizer: j.normalizer ?? null,
    preTokenizer: j.pre_tokenizer ?? null,
    postProcessor: j.post_processor ?? null,
    decoder: j.decoder ?? null,
    truncation: j.truncation ?? null,
    padding: j.padding ?? null,
    source,
  };
  const isWordPiece = model.type === 'WordPiece' || (model.type === undefined && 'continuing_subword_prefix' in model);
  if (!isWordPiece && model.type !== 'WordLevel')
    throw new DataFormatError(
      source,
      `model type ${JSON.stringify(model.type)} is not supported (WordPiece and WordLevel are)`,
    );
  checkIdRange(vocab, addedTokens, source);
  if (isWordPiece) {
    const wp = model as Partial<TokenizerJson['model'] & { type: 'WordPiece' }>;
    return new WordPiece(parts, {
      continuingSubwordPrefix: wp.continuing_subword_prefix,
      maxInputCharsPerWord: wp.max_input_chars_per_word,
    });
  }
  return new WordVocab(parts);
}

/**
 * Every id must index the embedding a model builds for the tokenizer (`vocabSize` rows: the distinct tokens of
 * `model.vocab` and `added_tokens`); an id past it failed mid-training in tfjs's GatherV2 without naming the file.
 */
function checkIdRange(vocab: Map<string, number>, added: readonly AddedTokenJson[], source: string): void {
  if (vocab.size === 0)
    throw new DataFormatError(source, 'model.vocab is empty: a tokenizer needs tokens (train or re-save it)');
  const size = new Set([...vocab.keys(), ...added.map((t) => t.content)]).size;
  const entries: [string, number][] = [...vocab, ...added.map((t): [string, number] => [t.content, t.id])];
  const bad = entries.find(([, id]) => id >= size);
  if (bad)
    throw new DataFormatError(
      source,
      `token ${JSON.stringify(bad[0])} has id ${bad[1]}, past the vocabulary of ${size} tokens (ids 0..${size - 1}); fix or re-save the tokenizer`,
    );
}

/** Reads a Hugging Face tokenizer.json file (see {@link tokenizerFromJson}). */
export async function loadTokenizer(path: string): Promise<WordPiece | WordVocab> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new ModelIOError(path, 'cannot read tokenizer.json (check the path)', { cause });
  }
  // A binary file (an image, a model's weights.bin): say so, rather than print its bytes in a JSON error.
  if (bytes.subarray(0, 8192).includes(0))
    throw new DataFormatError(
      path,
      'looks binary (NUL bytes), not a tokenizer.json (give the tokenizer.json a run saved)',
    );
  const text = bytes.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new DataFormatError(
      path,
      `not valid JSON: ${printable((cause as Error).message)} (give a tokenizer.json, or re-save the tokenizer)`,
      { cause },
    );
  }
  return tokenizerFromJson(json, path);
}

/** Control characters shown as `\xNN` escapes, so an error about a file never prints raw bytes to a terminal. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this replaces
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
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
