import { writeFile } from 'node:fs/promises';
import { DataFormatError, OptionError } from '../../core/errors.ts';
import { buildNormalizer, buildPreTokenizer, type Normalizer, type PreTokenizer } from './normalize.ts';
import { PostProcessor } from './postProcess.ts';
import type {
  AddedTokenJson,
  DecoderJson,
  NormalizerJson,
  PaddingJson,
  PostProcessorJson,
  PreTokenizerJson,
  TokenizerJson,
  TruncationJson,
} from './tokenizerJson.ts';

/** The special tokens of every tokenizer trained here, at ids 0..4 in this order. */
export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

/** The parts of a tokenizer besides its model: the pipeline stages of tokenizer.json. */
export interface TokenizerParts {
  /** Token -> id for the model's vocabulary. */
  readonly vocab: ReadonlyMap<string, number>;
  readonly unkToken: string;
  readonly addedTokens: readonly AddedTokenJson[];
  readonly normalizer: NormalizerJson | null;
  readonly preTokenizer: PreTokenizerJson | null;
  readonly postProcessor: PostProcessorJson | null;
  readonly decoder: DecoderJson | null;
  readonly truncation: TruncationJson | null;
  readonly padding: PaddingJson | null;
  /** Where the parts were loaded from, for error messages. */
  readonly source?: string;
}

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /** Add the post-processor's special tokens ([CLS] ... [SEP]). Default true, as in Hugging Face. */
  readonly addSpecialTokens?: boolean;
  /** A second sequence, for pair templates ([CLS] A [SEP] B [SEP]). */
  readonly pair?: string;
}

/** Options of {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** Leave special tokens out of the text. Default true, as in Hugging Face. */
  readonly skipSpecialTokens?: boolean;
}

/** The special tokens a training run reserves, as tokenizer.json `added_tokens`. */
export function specialAddedTokens(): AddedTokenJson[] {
  return SPECIAL_TOKENS.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
}

/**
 * The shared pipeline of the tokenizers here, in the order Hugging Face runs it: split off added tokens, normalize,
 * pre-tokenize into words, let the model split each word, truncate, add special tokens, pad. Subclasses supply
 * only the model: how a word becomes tokens and how the model is written to tokenizer.json.
 */
export abstract class Tokenizer {
  readonly #vocab: Map<string, number>;
  readonly #tokens: string[] = [];
  readonly #special = new Set<number>();
  readonly #normalize: Normalizer;
  readonly #preTokenize: PreTokenizer;
  readonly #post: PostProcessor;
  readonly #addedPattern: RegExp | null;
  readonly #wordIds = new Map<string, readonly number[]>();
  readonly parts: TokenizerParts;

  protected constructor(parts: TokenizerParts) {
    this.parts = parts;
    const source = parts.source ?? 'tokenizer';
    this.#vocab = new Map(parts.vocab);
    for (const added of parts.addedTokens) {
      this.#vocab.set(added.content, added.id);
      if (added.special) this.#special.add(added.id);
    }
    for (const [token, id] of this.#vocab) this.#tokens[id] = token;
    if (!this.#vocab.has(parts.unkToken))
      throw new DataFormatError(
        source,
        `unk_token ${JSON.stringify(parts.unkToken)} is not in the vocabulary (add it to model.vocab)`,
      );
    this.#normalize = buildNormalizer(parts.normalizer, source);
    this.#preTokenize = buildPreTokenizer(parts.preTokenizer, source);
    this.#post = new PostProcessor(parts.postProcessor, (t) => this.#vocab.get(t), source);
    // Added tokens are matched in the raw text before normalization (longest first), as the Rust crate does.
    const contents = parts.addedTokens.map((t) => t.content).sort((a, b) => b.length - a.length);
    this.#addedPattern = contents.length > 0 ? new RegExp(`(${contents.map(escapeRegExp).join('|')})`, 'u') : null;
  }

  /** Number of ids (model vocabulary plus added tokens). */
  get vocabSize(): number {
    return this.#vocab.size;
  }

  /** The id of a token, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.#vocab.get(token);
  }

  /** The token of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.#tokens[id];
  }

  get unkId(): number {
    return this.#vocab.get(this.parts.unkToken)!;
  }
  get padId(): number | undefined {
    return this.parts.padding?.pad_id ?? this.#vocab.get('[PAD]');
  }
  get clsId(): number | undefined {
    return this.#vocab.get('[CLS]');
  }
  get sepId(): number | undefined {
    return this.#vocab.get('[SEP]');
  }
  get maskId(): number | undefined {
    return this.#vocab.get('[MASK]');
  }

  /** Splits text into normalized words, the units the model tokenizes (and trainers count). */
  words(text: string): string[] {
    return this.#preTokenize(this.#normalize(text));
  }

  /** The model's tokens for one normalized word. */
  protected abstract tokenizeWord(word: string, out: string[]): void;

  /** The `model` field of tokenizer.json. */
  protected abstract modelJson(): TokenizerJson['model'];

  /** The tokens of a text, without special tokens ("unaffable" -> ["una", "##ffa", "##ble"]). */
  tokenize(text: string): string[] {
    const out: string[] = [];
    for (const piece of this.#splitAdded(text)) {
      if (piece.added) out.push(piece.text);
      else for (const word of this.words(piece.text)) this.tokenizeWord(word, out);
    }
    return out;
  }

  /** The ids of a text, truncated, with special tokens and padding as the tokenizer is configured. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const addSpecial = options.addSpecialTokens ?? true;
    let a = this.#ids(text);
    let b = options.pair === undefined ? undefined : this.#ids(options.pair);
    if (this.parts.truncation)
      [a, b] = truncate(this.parts.truncation, a, b, addSpecial ? this.#post.added(b !== undefined) : 0);
    const ids = addSpecial ? this.#post.apply(a, b) : b ? [...a, ...b] : a;
    const fixed =
      this.parts.padding && typeof this.parts.padding.strategy === 'object' ? this.parts.padding.strategy.Fixed : 0;
    return fixed ? this.#pad(ids, fixed) : ids;
  }

  /** Encodes texts and, under `BatchLongest` (or `Fixed`) padding, pads them to one length. */
  encodeBatch(texts: readonly string[], options: EncodeOptions = {}): number[][] {
    const all = texts.map((t) => this.encode(t, options));
    if (!this.parts.padding) return all;
    const longest = Math.max(0, ...all.map((ids) => ids.length));
    return all.map((ids) => this.#pad(ids, longest));
  }

  /** The text of ids, joined by the decoder (WordPiece glues `##` pieces back to their word). */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skip = options.skipSpecialTokens ?? true;
    const tokens: string[] = [];
    for (const id of ids) {
      const token = this.#tokens[id];
      if (token === undefined)
        throw new OptionError('ids', id, `an id below ${this.#tokens.length} that is in the vocabulary`);
      if (!(skip && this.#special.has(id))) tokens.push(token);
    }
    return decodeTokens(this.parts.decoder, tokens);
  }

  /** The tokenizer as Hugging Face tokenizer.json. */
  toJSON(): TokenizerJson {
    const p = this.parts;
    return {
      version: '1.0',
      truncation: p.truncation,
      padding: p.padding,
      added_tokens: p.addedTokens.map((t) => ({ ...t })),
      normalizer: p.normalizer,
      pre_tokenizer: p.preTokenizer,
      post_processor: p.postProcessor,
      decoder: p.decoder,
      model: this.modelJson(),
    };
  }

  /** Writes tokenizer.json (2-space indented, as Python's `tokenizer.save` writes it). */
  async save(path: string): Promise<void> {
    await writeFile(path, JSON.stringify(this.toJSON(), null, 2));
  }

  /** The model vocabulary as a plain object sorted by id, as tokenizer.json stores it. */
  protected vocabJson(): Record<string, number> {
    const entries = [...this.parts.vocab].sort((x, y) => x[1] - y[1]);
    return Object.fromEntries(entries);
  }

  #ids(text: string): number[] {
    const unk = this.unkId;
    const out: number[] = [];
    for (const piece of this.#splitAdded(text)) {
      if (piece.added) out.push(this.#vocab.get(piece.text) ?? unk);
      else for (const word of this.words(piece.text)) for (const id of this.#idsOfWord(word, unk)) out.push(id);
    }
    return out;
  }

  /**
   * The ids of one normalized word: what `tokenizeWord` gives, looked up. Kept per word (a corpus repeats its words:
   * this skips the model's split and a vocabulary lookup a token), in a bounded map dropped whole when full.
   */
  #idsOfWord(word: string, unk: number): readonly number[] {
    const cached = this.#wordIds.get(word);
    if (cached) return cached;
    const tokens: string[] = [];
    this.tokenizeWord(word, tokens);
    const ids = tokens.map((t) => this.#vocab.get(t) ?? unk);
    if (this.cachesWords) {
      if (this.#wordIds.size >= WORD_IDS_CACHE) this.#wordIds.clear();
      this.#wordIds.set(word, ids);
    }
    return ids;
  }

  /** Whether the ids of each word are kept between calls (a model may turn it off). */
  protected get cachesWords(): boolean {
    return true;
  }

  #pad(ids: number[], length: number): number[] {
    const p = this.parts.padding!;
    const multiple = p.pad_to_multiple_of ?? 1;
    const target = Math.ceil(length / multiple) * multiple;
    if (ids.length >= target) return ids;
    const pad = new Array<number>(target - ids.length).fill(p.pad_id);
    return p.direction === 'Left' ? [...pad, ...ids] : [...ids, ...pad];
  }

  *#splitAdded(text: string): Generator<{ text: string; added: boolean }> {
    if (!this.#addedPattern) {
      yield { text, added: false };
      return;
    }
    // split() with a capturing group alternates plain text and matched added tokens.
    const pieces = text.split(this.#addedPattern);
    for (let i = 0; i < pieces.length; i++) if (pieces[i]) yield { text: pieces[i]!, added: i % 2 === 1 };
  }
}

/** Words whose ids a tokenizer keeps before it starts over. */
const WORD_IDS_CACHE = 50_000;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Cuts a sequence (or pair) so that, with `specials` tokens added, it fits `max_length`. */
function truncate(
  t: TruncationJson,
  a: number[],
  b: number[] | undefined,
  specials: number,
): [number[], number[] | undefined] {
  const budget = Math.max(0, t.max_length - specials);
  const cut = (ids: number[], n: number): number[] =>
    ids.length <= n ? ids : t.direction === 'Left' ? ids.slice(ids.length - n) : ids.slice(0, n);
  if (!b) return [cut(a, budget), b];
  if (t.strategy === 'OnlyFirst') return [cut(a, Math.max(0, budget - b.length)), b];
  if (t.strategy === 'OnlySecond') return [a, cut(b, Math.max(0, budget - a.length))];
  // LongestFirst: take from the longer sequence one token at a time.
  let [na, nb] = [a.length, b.length];
  while (na + nb > budget) {
    if (na >= nb) na--;
    else nb--;
  }
  return [cut(a, na), cut(b, nb)];
}

// The Rust crate's WordPiece decoder cleanup: glue punctuation and English contractions to the word before.
const CLEANUP: ReadonlyArray<[string, string]> = [
  [' .', '.'],
  [' ?', '?'],
  [' !', '!'],
  [' ,', ','],
  [" ' ", "'"],
  [" n't", "n't"],
  [" 'm", "'m"],
  [' do not', " don't"],
  [" 's", "'s"],
  [" 've", "'ve"],
  [" 're", "'re"],
];

function cleanup(text: string): string {
  let s = text;
  for (const [from, to] of CLEANUP) s = s.replaceAll(from, to);
  return s;
}

/** Joins tokens into text the way the decoder of tokenizer.json says (no decoder: tokens joined by spaces). */
export function decodeTokens(decoder: DecoderJson | null, tokens: readonly string[]): string {
  if (decoder === null) return tokens.join(' ');
  let out = '';
  tokens.forEach((token, i) => {
    let t = token;
    if (i > 0) t = t.startsWith(decoder.prefix) ? t.slice(decoder.prefix.length) : ` ${t}`;
    out += decoder.cleanup ? cleanup(t) : t;
  });
  return out;
}
