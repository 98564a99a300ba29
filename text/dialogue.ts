import type { Observable, OperatorFunction } from 'rxjs';
import { DialogueFormatError, OptionError } from '../core/errors.ts';
import { flushingOperator } from '../core/flushingOperator.ts';
import { readLines, type Line, type ReadLinesOptions } from './readCorpus.ts';

/** One dialogue, whatever file format it came from. */
export interface Dialogue {
  /** Unique within its source: DailyDialog's 1-based line number, the JSONL `id`, or the text file's 1-based dialogue number. */
  readonly id: string;
  /** The utterances in order; speakers alternate (DailyDialog has no speaker labels). */
  readonly turns: readonly string[];
  /** The file it came from, or `-` for stdin. */
  readonly source: string;
}

/**
 * The dialogue formats read here:
 * - `dailydialog`: one dialogue a line, each utterance ended by `__eou__` (Li et al. 2017, DailyDialog);
 * - `jsonl`: one `{"id": ..., "turns": ["...", ...]}` object a line;
 * - `text`: one turn a line, a blank line between dialogues;
 * - `auto`: chosen per file from its extension (`.jsonl`, `.ndjson`) or its first non-blank line
 *   (`{` -> jsonl, contains `__eou__` -> dailydialog, else text).
 */
export type DialogueFormat = 'dailydialog' | 'jsonl' | 'text' | 'auto';

/** Options of {@link parseDialogues}. */
export interface ParseDialoguesOptions {
  /** The file format. Default `auto`. */
  readonly format?: DialogueFormat;
  /** A malformed record (bad JSON, no turns): fail with DialogueFormatError (default) or skip and count it. */
  readonly onInvalid?: 'skip' | 'fail';
  /** Called for each skipped record with the error that would have been thrown. */
  readonly onSkip?: (error: DialogueFormatError) => void;
  /** Counts filled in as dialogues are parsed. */
  readonly stats?: DialogueStats;
}

/** Options of {@link readDialogues}: how to read the files and how to parse them. */
export interface ReadDialoguesOptions extends ParseDialoguesOptions {
  /** Passed to readLines (valve, maxLineBytes, stdin, ...); its `onInvalid` is this object's `onInvalid`. */
  readonly read?: Omit<ReadLinesOptions, 'onInvalid'>;
}

/** Counts of a dialogue parse. */
export interface DialogueStats {
  dialogues: number;
  turns: number;
  /** Malformed records skipped under `onInvalid: 'skip'`. */
  skipped: number;
}

const FORMATS: readonly DialogueFormat[] = ['dailydialog', 'jsonl', 'text', 'auto'];
const EOU = '__eou__';

/**
 * Reads dialogues from files, folders, globs, `.gz` or stdin (see readLines) in any of the {@link DialogueFormat}s.
 *
 * @example
 * readDialogues('dailydialog/train/dialogues_train.txt').subscribe((d) => console.log(d.id, d.turns.length));
 */
export function readDialogues(
  inputs: string | readonly string[],
  options: ReadDialoguesOptions = {},
): Observable<Dialogue> {
  const parse = parseDialogues(options);
  return readLines(inputs, { ...options.read, onInvalid: options.onInvalid }).pipe(parse);
}

/** An RxJS operator from corpus lines to dialogues (see {@link DialogueFormat}); lines of several files may follow each other. */
export function parseDialogues(options: ParseDialoguesOptions = {}): OperatorFunction<Line, Dialogue> {
  const format = options.format ?? 'auto';
  if (!FORMATS.includes(format)) throw new OptionError('format', format, FORMATS.map((f) => `'${f}'`).join(', '));
  const onInvalid = options.onInvalid ?? 'fail';
  if (onInvalid !== 'skip' && onInvalid !== 'fail') throw new OptionError('onInvalid', onInvalid, "'skip' or 'fail'");
  return flushingOperator<Line, Dialogue>((push) => {
    const stats = options.stats ?? { dialogues: 0, turns: 0, skipped: 0 };
    let source: string | undefined;
    let current: Exclude<DialogueFormat, 'auto'> | undefined;
    // The text format's open dialogue: its turns, and how many dialogues the file has had.
    let turns: string[] = [];
    let ordinal = 0;

    const emit = (d: Dialogue): void => {
      stats.dialogues++;
      stats.turns += d.turns.length;
      push(d);
    };
    const invalid = (err: DialogueFormatError): void => {
      if (onInvalid === 'fail') throw err;
      stats.skipped++;
      options.onSkip?.(err);
    };
    const flushText = (): void => {
      if (turns.length > 0 && source !== undefined) emit({ id: String(++ordinal), turns, source });
      turns = [];
    };
    const onLine = (line: Line): void => {
      if (line.source !== source) {
        flushText();
        source = line.source;
        current = format === 'auto' ? undefined : format;
        ordinal = 0;
      }
      const blank = line.text.trim() === '';
      if (current === undefined) {
        if (blank) return;
        current = detectFormat(line);
      }
      if (current === 'text') {
        if (blank) flushText();
        else turns.push(line.text.trim());
      } else if (!blank) {
        const parsed = current === 'jsonl' ? parseJsonlDialogue(line) : parseDailyDialogLine(line);
        if (parsed instanceof DialogueFormatError) invalid(parsed);
        else emit(parsed);
      }
    };
    return { next: onLine, flush: flushText };
  });
}

/** The format of a file, from its name or its first non-blank line. */
export function detectFormat(first: Line): Exclude<DialogueFormat, 'auto'> {
  const name = first.source.toLowerCase().replace(/\.gz$/, '');
  if (name.endsWith('.jsonl') || name.endsWith('.ndjson')) return 'jsonl';
  const text = first.text.trimStart();
  if (text.startsWith('{')) return 'jsonl';
  if (text.includes(EOU)) return 'dailydialog';
  return 'text';
}

/** One DailyDialog line: utterances ended by `__eou__`; the id is the line number. */
export function parseDailyDialogLine(line: Line): Dialogue | DialogueFormatError {
  const turns = line.text
    .split(EOU)
    .map((t) => t.trim())
    .filter((t) => t !== '');
  if (turns.length === 0) return new DialogueFormatError(line.source, line.line, `no utterance before ${EOU}`);
  if (!line.text.trimEnd().endsWith(EOU))
    return new DialogueFormatError(
      line.source,
      line.line,
      `line does not end with ${EOU}: is this a DailyDialog file? (give format: 'text' or 'jsonl' otherwise)`,
    );
  return { id: String(line.line), turns, source: line.source };
}

/** One JSONL record `{"id": ..., "turns": [...]}`; a record without an id gets its line number. */
export function parseJsonlDialogue(line: Line): Dialogue | DialogueFormatError {
  let record: unknown;
  try {
    record = JSON.parse(line.text);
  } catch (cause) {
    return new DialogueFormatError(line.source, line.line, `not valid JSON: ${(cause as Error).message}`, { cause });
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    return new DialogueFormatError(line.source, line.line, 'expected an object {"id": ..., "turns": [...]}');
  }
  const { id, turns } = record as { id?: unknown; turns?: unknown };
  if (!Array.isArray(turns) || turns.length === 0 || !turns.every((t) => typeof t === 'string')) {
    return new DialogueFormatError(
      line.source,
      line.line,
      `"turns" must be a non-empty array of strings; got ${JSON.stringify(turns)?.slice(0, 80)}`,
    );
  }
  if (id !== undefined && typeof id !== 'string' && typeof id !== 'number') {
    return new DialogueFormatError(
      line.source,
      line.line,
      `"id" must be a string or a number; got ${JSON.stringify(id)}`,
    );
  }
  return { id: id === undefined ? String(line.line) : String(id), turns: turns as string[], source: line.source };
}
