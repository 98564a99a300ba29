import { type OperatorFunction, concatMap, from, map, pipe } from 'rxjs';
import { flushingOperator } from '../core/flushingOperator.ts';
import { OptionError } from '../core/errors.ts';
import type { Line } from './readCorpus.ts';

/**
 * Titles and abbreviations after which ICU's sentence rules wrongly end a sentence ("Mr. Smith"). Intl.Segmenter
 * has no suppression list, so sentences ending in one of these are joined to the next.
 */
export const ENGLISH_ABBREVIATIONS: readonly string[] = [
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
];

/** Options of {@link segmentSentences}. */
export interface SegmentOptions {
  /** BCP 47 locale for Intl.Segmenter, e.g. `en` or `zh`. Default `en` (ICU's rules also cover CJK punctuation). */
  readonly locale?: string;
  /** Words that, followed by a period, do not end a sentence. Default {@link ENGLISH_ABBREVIATIONS}; `[]` turns it off. */
  readonly abbreviations?: readonly string[];
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
  const abbreviations = new Set((options.abbreviations ?? ENGLISH_ABBREVIATIONS).map((a) => a.toLowerCase()));
  const out: string[] = [];
  let carry = '';
  for (const { segment } of segmenter(options.locale ?? 'en', 'sentence').segment(text)) {
    const sentence = carry + segment;
    const lastWord = /(?:^|\s)([\p{L}.]+)\.\s*$/u.exec(sentence)?.[1];
    if (lastWord !== undefined && abbreviations.has(lastWord.toLowerCase())) {
      carry = sentence;
      continue;
    }
    carry = '';
    const trimmed = sentence.trim();
    if (trimmed) out.push(trimmed);
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
export function splitDocuments(): OperatorFunction<Line, TextBlock> {
  return flushingOperator<Line, TextBlock>((emit) => {
    let lines: string[] = [];
    let first: Line | undefined;
    const flush = (): void => {
      if (first && lines.length > 0) emit({ lines, source: first.source, line: first.line });
      lines = [];
      first = undefined;
    };
    const next = (line: Line): void => {
      if (first && line.source !== first.source) flush();
      const text = line.text.trimEnd();
      if (text.trim() === '') return flush();
      first ??= line;
      lines.push(text);
    };
    return { next, flush };
  });
}

/** Groups lines into paragraphs on blank lines, joining each paragraph's lines with one space. */
export function splitParagraphs(): OperatorFunction<Line, Paragraph> {
  return pipe(
    splitDocuments(),
    map((block) => ({ text: block.lines.map((l) => l.trim()).join(' '), source: block.source, line: block.line })),
  );
}
