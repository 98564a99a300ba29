import { DataFormatError } from '../../core/errors.ts';
import type { NormalizerJson, PreTokenizerJson } from './tokenizerJson.ts';

/** A text-to-text step run before splitting into words (lowercasing, accent stripping, cleaning). */
export type Normalizer = (text: string) => string;
/** Splits normalized text into the words the model tokenizes one by one. */
export type PreTokenizer = (text: string) => string[];

// The CJK Unified Ideograph blocks BERT pads with spaces so that each ideograph becomes its own word.
const CJK =
  /([\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B820}-\u{2CEAF}\u{2F800}-\u{2FA1F}])/gu;
// Control and format characters (Unicode C*) except tab and line breaks, plus NUL and the replacement character.
const CONTROL = /[\0\uFFFD]|(?![\t\n\r])\p{C}/gu;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** BERT's normalizer: clean control characters, pad CJK ideographs, strip accents, lowercase (as `BertNormalizer`). */
export function bertNormalizer(options: {
  cleanText: boolean;
  handleChineseChars: boolean;
  stripAccents: boolean | null;
  lowercase: boolean;
}): Normalizer {
  const strip = options.stripAccents ?? options.lowercase;
  return (text) => {
    // Most English text is plain ASCII, where only lowercasing can change anything.
    if (PRINTABLE_ASCII.test(text)) return options.lowercase ? text.toLowerCase() : text;
    let s = text;
    if (options.cleanText) s = s.replace(CONTROL, '').replace(/\s/gu, ' ');
    if (options.handleChineseChars) s = s.replace(CJK, ' $1 ');
    if (strip) s = stripAccents(s);
    if (options.lowercase) s = s.toLowerCase();
    return s;
  };
}

function stripAccents(text: string): string {
  return text.normalize('NFD').replace(/\p{Mn}/gu, '');
}

/** Builds the normalizer a tokenizer.json describes; `null` is the identity. */
export function buildNormalizer(json: NormalizerJson | null, file: string): Normalizer {
  if (json === null) return (s) => s;
  switch (json.type) {
    case 'BertNormalizer':
      return bertNormalizer({
        cleanText: json.clean_text ?? true,
        handleChineseChars: json.handle_chinese_chars ?? true,
        stripAccents: json.strip_accents ?? null,
        lowercase: json.lowercase ?? true,
      });
    case 'Lowercase':
      return (s) => s.toLowerCase();
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD': {
      const form = json.type;
      return (s) => s.normalize(form);
    }
    case 'StripAccents':
      return stripAccents;
    case 'Strip':
      return (s) =>
        json.strip_left && json.strip_right
          ? s.trim()
          : json.strip_left
            ? s.trimStart()
            : json.strip_right
              ? s.trimEnd()
              : s;
    case 'Sequence': {
      const steps = json.normalizers.map((n) => buildNormalizer(n, file));
      return (s) => steps.reduce((acc, step) => step(acc), s);
    }
    default:
      throw unsupported(file, 'normalizer', json);
  }
}

// BERT treats all ASCII non-alphanumerics as punctuation ($, +, <, ^ are Unicode symbols, not punctuation).
const BERT_WORDS = /[^\s\p{P}\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]+|[\p{P}\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]/gu;
// The Rust crate's `\w+|[^\w\s]+` with Oniguruma's Unicode \w (letters, marks, digits, connectors).
const WHITESPACE_WORDS = /[\p{L}\p{M}\p{Nd}\p{Pc}]+|[^\p{L}\p{M}\p{Nd}\p{Pc}\s]+/gu;

/** Builds the pre-tokenizer a tokenizer.json describes; `null` keeps the text as one word. */
export function buildPreTokenizer(json: PreTokenizerJson | null, file: string): PreTokenizer {
  if (json === null) return (s) => (s ? [s] : []);
  switch (json.type) {
    case 'BertPreTokenizer':
      return (s) => s.match(BERT_WORDS) ?? [];
    case 'Whitespace':
      return (s) => s.match(WHITESPACE_WORDS) ?? [];
    case 'WhitespaceSplit':
      return (s) => s.split(/\s+/u).filter((w) => w !== '');
    case 'Sequence': {
      const steps = json.pretokenizers.map((p) => buildPreTokenizer(p, file));
      return (s) => steps.reduce<string[]>((words, step) => words.flatMap(step), [s]);
    }
    default:
      throw unsupported(file, 'pre_tokenizer', json);
  }
}

export function unsupported(file: string, field: string, json: unknown): DataFormatError {
  const type = (json as { type?: unknown } | null)?.type;
  return new DataFormatError(
    file,
    `${field} type ${JSON.stringify(type)} is not supported (use one of the types listed in text/tokenizers/tokenizerJson.ts)`,
  );
}
