import type { Valve } from '../core/valve.ts';
import { type Observable, map, filter, concatMap } from 'rxjs';
import { type Dialogue, readDialogues, type DialogueFormat } from './dialogue.ts';
import { readLines, type SkippedInput } from './readCorpus.ts';
import type { SentenceText } from './tokenizedSentence.ts';
import { splitParagraphs, segmentSentences } from './segment.ts';

/** Where the raw items of text tasks come from. */
export interface TextSourceOptions {
  /** Text corpus inputs (files, folders, globs, `.gz`, `-`), read by the sentence tasks. */
  text?: readonly string[];
  /** Dialogue inputs, read by dialogue-order. */
  dialogues?: readonly string[];
  /** Format of the dialogue inputs. Default `auto`. */
  dialogueFormat?: DialogueFormat;
  /** Binary files, invalid UTF-8 lines and bad dialogue records: stop with a named error (default) or count and skip them. */
  onInvalid?: 'skip' | 'fail';
  /** Called for each skipped input (line, file or record). */
  onSkip?: (skip: TextSkip) => void;
  /** Keep only item k where k % count === index (paragraphs or dialogues), for parallel workers. */
  shard?: { index: number; count: number };
}

/** A line, file or dialogue record left out under `onInvalid: 'skip'`. */
export interface TextSkip {
  readonly source: string;
  readonly line: number;
  readonly reason: SkippedInput['reason'] | 'bad-record';
}

/**
 * Longest piece of a line that text sources hold: a longer line is read in pieces of this size, each segmented on
 * its own (in linear time, see `segmentSentences`), so one huge line neither stalls a run nor its signals.
 */
export const TEXT_PIECE_BYTES = 64 * 1024;

/** Sentences of a corpus; each paragraph (lines between blank lines, at most MAX_BLOCK_CHARS) is one document. */
export function readSentences(
  inputs: readonly string[],
  options: TextSourceOptions & { valve?: Valve } = {},
): Observable<SentenceText> {
  let document = 0;
  const shard = options.shard;
  const read = { valve: options.valve, onInvalid: options.onInvalid, onSkip: options.onSkip };
  return readLines(inputs, { ...read, maxLineBytes: TEXT_PIECE_BYTES }).pipe(
    splitParagraphs(),
    map((p, k) => ({ p, k })),
    filter(({ k }) => !shard || k % shard.count === shard.index),
    concatMap(({ p }) => {
      const doc = document++;
      return segmentSentences(p.text).map((text): SentenceText => ({
        text,
        document: doc,
        source: `${p.source}:${p.line}`,
      }));
    }),
  );
}

/** Dialogues of the dialogue inputs, sharded as `options.shard` says. */
export function readDialogueItems(
  inputs: readonly string[],
  options: TextSourceOptions & { valve?: Valve } = {},
): Observable<Dialogue> {
  const shard = options.shard;
  const onSkip = options.onSkip;
  return readDialogues(inputs, {
    format: options.dialogueFormat,
    onInvalid: options.onInvalid,
    onSkip: onSkip && ((err) => onSkip({ source: err.source, line: err.line, reason: 'bad-record' })),
    read: { valve: options.valve, onSkip },
  }).pipe(filter((_, k) => !shard || k % shard.count === shard.index));
}
