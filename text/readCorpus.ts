import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Observable } from 'rxjs';
import { BinaryCorpusError, CorpusError, EmptyCorpusError, InvalidUtf8Error, OptionError } from '../core/errors.ts';
import type { Valve } from '../core/valve.ts';
import { TEXT_EXTENSIONS, resolveCorpusInputs } from './resolveCorpusInputs.ts';
import { LineSplitter, type LongLinePolicy } from './splitLines.ts';

/** One line of a corpus, without its line ending. */
export interface Line {
  readonly text: string;
  /** The file it came from, or `-` for stdin. */
  readonly source: string;
  /** 1-based line number in that file (the pieces of a cut over-long line share one number). */
  readonly line: number;
}

/** Counts kept while a corpus is read; pass your own object as `stats` to watch it fill. */
export interface CorpusStats {
  files: number;
  /** Lines emitted, blank ones included. */
  lines: number;
  /** Bytes read (after gunzip). */
  bytes: number;
  /** Lines skipped because they were not valid UTF-8 (`onInvalid: 'skip'`). */
  invalidLines: number;
  /** Files skipped because they looked binary (`onInvalid: 'skip'`). */
  binaryFiles: number;
  /** Lines longer than `maxLineBytes` that were cut into pieces. */
  longLinesSplit: number;
  /** Lines longer than `maxLineBytes` that were dropped (`longLines: 'skip'`). */
  longLinesSkipped: number;
}

/** A line or file that was skipped, with why. */
export interface SkippedInput {
  readonly source: string;
  readonly line: number;
  readonly reason: 'invalid-utf8' | 'binary' | 'too-long';
}

/** Options of {@link readLines}. */
export interface ReadLinesOptions {
  /** Backpressure: reading pauses while this valve is closed (see pipeline/valve.ts). */
  readonly valve?: Valve;
  /** Longest line held in memory, in bytes; longer lines are cut or skipped (see `longLines`). Default 1 MiB. */
  readonly maxLineBytes?: number;
  /** What to do with a line longer than `maxLineBytes`: cut it into pieces (`split`, default) or drop it. */
  readonly longLines?: LongLinePolicy;
  /** Invalid UTF-8 lines and binary files: fail with a named error (default) or skip them and count them. */
  readonly onInvalid?: 'skip' | 'fail';
  /** An object to fill with counts as reading goes on. */
  readonly stats?: CorpusStats;
  /** Called once with the counts when the corpus has been read to the end. */
  readonly summary?: (stats: CorpusStats) => void;
  /** Called for each skipped line or file, with where it was. */
  readonly onSkip?: (skip: SkippedInput) => void;
  /** The stream read for the input `-`; defaults to `process.stdin` (tests inject a Readable). */
  readonly stdin?: Readable;
  /** Extensions read when a folder is given. Default {@link TEXT_EXTENSIONS}. */
  readonly extensions?: readonly string[];
  /** Bytes read at a time from a file (the read stream's highWaterMark). Default 64 KiB. */
  readonly chunkBytes?: number;
}

/** A fresh all-zero {@link CorpusStats}. */
export function emptyCorpusStats(): CorpusStats {
  return { files: 0, lines: 0, bytes: 0, invalidLines: 0, binaryFiles: 0, longLinesSplit: 0, longLinesSkipped: 0 };
}

const MIB = 1024 * 1024;
// NUL bytes in the first few KiB mark a binary file, the same test git and grep use.
const BINARY_SNIFF_BYTES = 8192;

/**
 * Streams the lines of a text corpus: files, folders (recursive, text-like files), globs, `.gz` files and `-` for
 * stdin, one file after another in the order given. Memory stays bounded: files are read in chunks, a line is
 * never held past `maxLineBytes`, and reading pauses while `valve` is closed.
 *
 * @throws (via the stream) CorpusError for a missing input, InvalidUtf8Error / BinaryCorpusError under
 *   `onInvalid: 'fail'`, EmptyCorpusError when no non-blank line was read.
 *
 * @example
 * readLines(['books/*.txt', 'extra.txt.gz']).pipe(map((l) => l.text)).subscribe(console.log);
 */
export function readLines(inputs: string | readonly string[], options: ReadLinesOptions = {}): Observable<Line> {
  const opts = validateOptions(options);
  return new Observable<Line>((subscriber) => {
    const stats = options.stats ?? emptyCorpusStats();
    const state = { closed: false, stop: () => {} };
    let nonBlank = 0;
    const emit = (line: Line): void => {
      stats.lines++;
      if (line.text.trim() !== '') nonBlank++;
      subscriber.next(line);
    };
    (async () => {
      const files = await resolveCorpusInputs(inputs, opts.extensions);
      for (const file of files) {
        if (state.closed) return;
        await readFile(file, opts, stats, emit, state);
      }
      if (state.closed) return;
      if (nonBlank === 0) throw new EmptyCorpusError(files);
      options.summary?.(stats);
      subscriber.complete();
    })().catch((err: unknown) => subscriber.error(err));
    return () => {
      state.closed = true;
      state.stop();
    };
  });
}

type Resolved = Required<
  Pick<ReadLinesOptions, 'maxLineBytes' | 'longLines' | 'onInvalid' | 'extensions' | 'chunkBytes'>
> &
  ReadLinesOptions;

function validateOptions(options: ReadLinesOptions): Resolved {
  const maxLineBytes = options.maxLineBytes ?? MIB;
  if (!Number.isInteger(maxLineBytes) || maxLineBytes < 4)
    throw new OptionError('maxLineBytes', maxLineBytes, 'an integer >= 4 (bytes)');
  const chunkBytes = options.chunkBytes ?? 64 * 1024;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1)
    throw new OptionError('chunkBytes', chunkBytes, 'a positive integer (bytes)');
  const longLines = options.longLines ?? 'split';
  if (longLines !== 'split' && longLines !== 'skip') throw new OptionError('longLines', longLines, "'split' or 'skip'");
  const onInvalid = options.onInvalid ?? 'fail';
  if (onInvalid !== 'skip' && onInvalid !== 'fail') throw new OptionError('onInvalid', onInvalid, "'skip' or 'fail'");
  return {
    ...options,
    maxLineBytes,
    chunkBytes,
    longLines,
    onInvalid,
    extensions: options.extensions ?? TEXT_EXTENSIONS,
  };
}

interface ReadState {
  closed: boolean;
  /** Frees what the file being read holds (stream, valve waiter); replaced per file. */
  stop: () => void;
}

function openSource(file: string, opts: Resolved): { stream: Readable; owned: Readable[] } {
  const isStdin = file === '-';
  const raw: Readable = isStdin
    ? (opts.stdin ?? process.stdin)
    : createReadStream(file, { highWaterMark: opts.chunkBytes });
  // stdin belongs to the process (or the test that injected it): pause it, never destroy it.
  const owned = isStdin ? [] : [raw];
  if (!file.toLowerCase().endsWith('.gz')) return { stream: raw, owned };
  const gunzip = createGunzip({ chunkSize: Math.min(opts.chunkBytes, 64 * 1024) });
  raw.on('error', (err) => gunzip.destroy(err));
  return { stream: raw.pipe(gunzip), owned: [...owned, gunzip] };
}

/** Reads one file to its end, emitting its lines; rejects with a named error. */
function readFile(
  file: string,
  opts: Resolved,
  stats: CorpusStats,
  emit: (line: Line) => void,
  state: ReadState,
): Promise<void> {
  stats.files++;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  return new Promise<void>((resolve, reject) => {
    const { stream, owned } = openSource(file, opts);
    let cancelWait = () => {};
    let sniffed = 0;
    let done = false;
    const finish = (err?: unknown): void => {
      if (done) return;
      done = true;
      cancelWait();
      stream.off('data', onData).off('end', onEnd).off('error', onError);
      if (file === '-') stream.pause();
      for (const s of owned) s.destroy();
      if (err) reject(err as Error);
      else resolve();
    };
    state.stop = () => finish();

    const splitter = new LineSplitter(opts.maxLineBytes, opts.longLines, (bytes, line) => {
      if (state.closed || done) return;
      let text: string;
      try {
        text = decoder.decode(bytes);
      } catch (cause) {
        if (opts.onInvalid === 'fail') throw new InvalidUtf8Error(file, line, { cause });
        stats.invalidLines++;
        opts.onSkip?.({ source: file, line, reason: 'invalid-utf8' });
        return;
      }
      emit({ text, source: file, line });
    });

    const onData = (data: Buffer | string): void => {
      const chunk = typeof data === 'string' ? Buffer.from(data) : data;
      try {
        stats.bytes += chunk.length;
        if (sniffed < BINARY_SNIFF_BYTES) {
          const head = chunk.subarray(0, BINARY_SNIFF_BYTES - sniffed);
          sniffed += head.length;
          const nul = head.indexOf(0);
          if (nul !== -1) return binary(lineOf(head, nul, splitter.line));
        }
        const before = [splitter.splitLines, splitter.skippedLines];
        splitter.push(chunk);
        countLong(before);
      } catch (err) {
        return finish(err);
      }
      if (opts.valve && !opts.valve.isOpen && !done) {
        stream.pause();
        cancelWait = opts.valve.onOpen(() => {
          if (!done) stream.resume();
        });
      }
    };
    const countLong = ([split, skipped]: number[]): void => {
      stats.longLinesSplit += splitter.splitLines - split!;
      const newlySkipped = splitter.skippedLines - skipped!;
      stats.longLinesSkipped += newlySkipped;
      if (newlySkipped > 0) opts.onSkip?.({ source: file, line: splitter.line, reason: 'too-long' });
    };
    const binary = (line: number): void => {
      if (opts.onInvalid === 'fail') return finish(new BinaryCorpusError(file, line));
      stats.binaryFiles++;
      opts.onSkip?.({ source: file, line, reason: 'binary' });
      finish();
    };
    const onEnd = (): void => {
      try {
        const before = [splitter.splitLines, splitter.skippedLines];
        splitter.end();
        countLong(before);
        finish();
      } catch (err) {
        finish(err);
      }
    };
    const onError = (cause: Error): void => {
      const detail =
        file.toLowerCase().endsWith('.gz') && /header|gzip|zlib|unexpected end/i.test(cause.message)
          ? 'is not a valid gzip file (re-compress it with gzip, or drop the .gz extension if it is plain text)'
          : `cannot be read: ${cause.message} (check that it exists and is readable)`;
      finish(new CorpusError(`corpus file ${file} ${detail}`, file, splitter.line, { cause }));
    };
    stream.on('data', onData).on('end', onEnd).on('error', onError);
    if (file === '-') stream.resume();
  });
}

/** The line number of byte `index` of a chunk that starts on line `first`. */
function lineOf(chunk: Uint8Array, index: number, first: number): number {
  let line = first;
  for (let i = 0; i < index; i++) if (chunk[i] === 10) line++;
  return line;
}
