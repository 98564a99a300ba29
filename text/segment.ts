import { type OperatorFunction, concatMap, from, map, pipe } from 'rxjs';
import { flushingOperator } from '../core/flushingOperator.ts';
import { OptionError } from '../core/errors.ts';
import type { Line } from './readCorpus.ts';

/**
 * Titles and abbreviations after which ICU's sentence rules wrongly end a sentence ("Mr. Smith"). Intl.Segmenter
 * has no suppression list, so sentences ending in one of these are joined to the next.
 */
export const ENGLISH_ABBREVIATIONS: readonly string[] = Object.freeze([
  'Mr',
  'Mrs',
  'Ms',
  'Dr',
  'St',
  'Prof',
  'Sr',
  'Jr',
  'Rev',
  'Gen',
  'Col',
  'Capt',
  'Lt',
  'Mt',
  'vs',
  'etc',
  'e.g',
  'i.e',
  'cf',
  'No',
  'Vol',
  'Fig',
]);

/** Options of {@link segmentSentences}. */
export interface SegmentOptions {
  /** BCP 47 locale for Intl.Segmenter, e.g. `en` or `zh`. Default `en` (ICU's rules also cover CJK punctuation). */
  readonly locale?: string;
  /** Words that, followed by a period, do not end a sentence. Default {@link ENGLISH_ABBREVIATIONS}; `[]` turns it off. */
  readonly abbreviations?: readonly string[];
  /**
   * Longest piece of text handed to Intl.Segmenter at once, in UTF-16 units. Its sentence iterator slows down
   * about quadratically with the length of the text (a 256 KiB line: 9 s, issue 10), so longer text is first cut
   * into pieces (see {@link cutText}). Default {@link MAX_SEGMENT_CHARS}.
   */
  readonly maxPieceChars?: number;
}

/** Default piece length for segmentation: long enough for any real sentence, short enough to stay linear. */
export const MAX_SEGMENT_CHARS = 4096;

const SENTENCE_END = new Set(['.', '!', '?', '。', '！', '？', '…', ';', '；']);

/**
 * Cuts text into pieces of at most `maxChars` UTF-16 units, in linear time: each cut falls after the last
 * sentence end (`.!?` and CJK full stops) followed by a space in the second half of the window, else after its last
 * space, else at the limit (never inside a surrogate pair). Text within the limit is one piece.
 *
 * @example
 * cutText('Aa. Bb. Cc.', 8); // ['Aa. Bb. ', 'Cc.']
 */
export function cutText(text: string, maxChars = MAX_SEGMENT_CHARS): string[] {
  if (!Number.isInteger(maxChars) || maxChars < 2) throw new OptionError('maxPieceChars', maxChars, 'an integer >= 2');
  const pieces: string[] = [];
  let start = 0;
  while (text.length - start > maxChars) {
    pieces.push(text.slice(start, (start = cutPoint(text, start, start + maxChars))));
  }
  if (start < text.length) pieces.push(text.slice(start));
  return pieces;
}

/** Where to end the piece that starts at `start` and may reach `limit` (exclusive); scans back half a window at most. */
function cutPoint(text: string, start: number, limit: number): number {
  const floor = start + Math.floor((limit - start) / 2);
  let space = -1;
  for (let i = limit - 1; i > floor; i--) {
    const c = text[i]!;
    const isSpace = c === ' ' || c === '\t' || c === '\u3000';
    if (isSpace && SENTENCE_END.has(text[i - 1]!)) return i + 1;
    // CJK sentence ends need no space after them.
    if ((c === '。' || c === '！' || c === '？') && i + 1 <= limit) return i + 1;
    if (isSpace && space < 0) space = i + 1;
  }
  if (space > 0) return space;
  const high = text.charCodeAt(limit - 1);
  return high >= 0xd800 && high <= 0xdbff ? limit - 1 : limit;
}

/** The default abbreviations, lowercased once: a corpus segments thousands of paragraphs with them. */
let englishAbbreviations: ReadonlySet<string> | undefined;
function abbreviationSet(list: readonly string[]): ReadonlySet<string> {
  if (list !== ENGLISH_ABBREVIATIONS) return new Set(list.map((a) => a.toLowerCase()));
  return (englishAbbreviations ??= new Set(list.map((a) => a.toLowerCase())));
}

const segmenters = new Map<string, Intl.Segmenter>();
function segmenter(locale: string, granularity: 'sentence' | 'word'): Intl.Segmenter {
  const key = `${locale}/${granularity}`;
  let s = segmenters.get(key);
  if (!s) {
    try {
      s = new Intl.Segmenter(locale, { granularity });
    } catch {
      throw new OptionError('locale', locale, 'a BCP 47 language tag such as "en" or "zh"');
    }
    segmenters.set(key, s);
  }
  return s;
}

/**
 * Splits text into trimmed sentences with Intl.Segmenter (Unicode UAX #29 rules), so English and CJK text
 * ("今天很好。你呢？") both split.
 *
 * @example
 * segmentSentences('Mr. Smith came. He left!'); // ['Mr. Smith came.', 'He left!']
 */
export function segmentSentences(text: string, options: SegmentOptions = {}): string[] {
  const abbreviations = abbreviationSet(options.abbreviations ?? ENGLISH_ABBREVIATIONS);
  const out: string[] = [];
  let carry = '';
  const sentences = segmenter(options.locale ?? 'en', 'sentence');
  for (const piece of cutText(text, options.maxPieceChars ?? MAX_SEGMENT_CHARS)) {
    for (const { segment } of sentences.segment(piece)) {
      const sentence = carry + segment;
      // Only the tail can end in an abbreviation: a bounded look keeps a long carry from costing its length again.
      const lastWord = /(?:^|\s)([\p{L}.]+)\.\s*$/u.exec(sentence.slice(-64))?.[1];
      if (lastWord !== undefined && abbreviations.has(lastWord.toLowerCase()) && carry.length < MAX_SEGMENT_CHARS) {
        carry = sentence;
        continue;
      }
      carry = '';
      const trimmed = sentence.trim();
      if (trimmed) out.push(trimmed);
    }
  }
  if (carry.trim()) out.push(carry.trim());
  return out;
}

/**
 * The words of a text (segments Intl.Segmenter marks word-like: no spaces or punctuation). Chinese and Japanese
 * are split by ICU's dictionary, e.g. "我喜欢自然语言处理" -> 我 / 喜欢 / 自然 / 语言 / 处理.
 */
export function segmentWords(text: string, locale = 'en'): string[] {
  const out: string[] = [];
  for (const s of segmenter(locale, 'word').segment(text)) if (s.isWordLike) out.push(s.segment);
  return out;
}

/** An RxJS operator from texts (paragraphs, lines) to their sentences, in order. */
export function splitSentences(options: SegmentOptions = {}): OperatorFunction<string, string> {
  segmenter(options.locale ?? 'en', 'sentence');
  return concatMap((text) => from(segmentSentences(text, options)));
}

/**
 * Most characters in one block (paragraph) before it is closed even without a blank line: what one step of the
 * stream segments and samples at once, so a run keeps answering signals while it reads a huge line.
 */
export const MAX_BLOCK_CHARS = 64 * 1024;

/** A run of non-blank lines of one file. */
export interface TextBlock {
  /** The block's lines, trimmed of line-end whitespace. */
  readonly lines: readonly string[];
  readonly source: string;
  /** The 1-based line number of the block's first line. */
  readonly line: number;
}

/** A paragraph: the lines of a block joined by spaces, as wrapped prose (Project Gutenberg) needs. */
export interface Paragraph {
  readonly text: string;
  readonly source: string;
  readonly line: number;
}

/**
 * Groups lines into blocks separated by blank lines (or by a change of file), the layout of documents in BERT's
 * pre-training corpus (one sentence a line, a blank line between documents) and of paragraphs in wrapped prose.
 */
export function splitDocuments(maxBlockChars = MAX_BLOCK_CHARS): OperatorFunction<Line, TextBlock> {
  return flushingOperator<Line, TextBlock>((emit) => {
    let lines: string[] = [];
    let chars = 0;
    let first: Line | undefined;
    const flush = (): void => {
      if (first && lines.length > 0) emit({ lines, source: first.source, line: first.line });
      lines = [];
      chars = 0;
      first = undefined;
    };
    const next = (line: Line): void => {
      if (first && line.source !== first.source) flush();
      const text = line.text.trimEnd();
      if (text.trim() === '') return flush();
      first ??= line;
      lines.push(text);
      // A file without blank lines (or one long line read in pieces) must not become one block of its whole size.
      if ((chars += text.length) >= maxBlockChars) flush();
    };
    return { next, flush };
  });
}

/** Groups lines into paragraphs on blank lines, joining each paragraph's lines with one space. */
export function splitParagraphs(maxBlockChars = MAX_BLOCK_CHARS): OperatorFunction<Line, Paragraph> {
  return pipe(
    splitDocuments(maxBlockChars),
    map((block) => ({ text: block.lines.map((l) => l.trim()).join(' '), source: block.source, line: block.line })),
  );
}
