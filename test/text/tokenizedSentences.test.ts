import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { from, lastValueFrom, take, toArray } from 'rxjs';
import { EmptyCorpusError, InvalidUtf8Error, OptionError } from '../../core/errors.ts';
import { Valve } from '../../core/valve.ts';
import { readSentences, type TextSkip } from '../../text/sources.ts';
import { tokenizeSentences, type TokenizedSentence } from '../../text/tokenizedSentence.ts';
import { tokenizedSentences } from '../../text/tokenizedSentences.ts';
import { WordPiece } from '../../text/tokenizers/WordPiece.ts';
import { tokenizerFromJson } from '../../text/tokenizers/loadTokenizer.ts';

let dir = '';
let files: string[] = [];
let tokenizer: WordPiece;

const words = ['alpha', 'beta', 'gamma', 'delta', 'river', 'stone', 'light', 'quietly', 'unbelievable', 'Mr.'];
/** Paragraph `k` of file `f`: a few sentences of made-up prose, some with an abbreviation inside. */
function paragraph(f: number, k: number): string {
  const sentences = Array.from({ length: 1 + ((f + k) % 4) }, (_, s) => {
    const n = 4 + ((f * 7 + k * 3 + s) % 9);
    const body = Array.from({ length: n }, (_, w) => words[(f + k * 5 + s * 3 + w * 7) % words.length]).join(' ');
    return `${body[0]!.toUpperCase()}${body.slice(1)} ${k}${s % 2 ? '!' : '.'}`;
  });
  // Wrapped over lines as Gutenberg text is.
  return sentences.join(' ').replace(/(.{60,70}) /g, '$1\n');
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-tokenized-'));
  // Four files of different sizes, about 1.3 MB in all: many batches of 32 kB, so a thread takes some.
  const sizes = [2500, 600, 4000, 1];
  files = await Promise.all(
    sizes.map(async (n, f) => {
      const path = join(dir, `book-${f}.txt`);
      await writeFile(path, Array.from({ length: n }, (_, k) => paragraph(f, k)).join('\n\n') + '\n');
      return path;
    }),
  );
  tokenizer = await WordPiece.train(from(words.concat(['one two three four five six seven eight nine zero'])), {
    vocabSize: 200,
  });
});

test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Sentences as comparable plain values. */
function plain(sentences: readonly TokenizedSentence[]): Array<[number[], number, string | undefined]> {
  return sentences.map((s) => [[...s.ids], s.document, s.source]);
}

function sequential(inputs: readonly string[], options = {}): Promise<TokenizedSentence[]> {
  return lastValueFrom(readSentences(inputs, options).pipe(tokenizeSentences(tokenizer), toArray()));
}

test('two threads give the sentences, documents and sources of one thread, in order, a thread taking batches', async (t) => {
  const valve = new Valve();
  // Reading waits until the thread has surely started, so that it takes batches (about 0.1 s from a kept bundle).
  valve.close();
  setTimeout(() => valve.open(), 1500);
  const stats = { onThreads: 0, here: 0 };
  const threaded = await lastValueFrom(
    tokenizedSentences(files, tokenizer, { threads: 2, valve, stats }).pipe(toArray()),
  );
  const one = await sequential(files);
  t.true(one.length > 15000, `${one.length} sentences`);
  t.deepEqual(plain(threaded), plain(one));
  t.true(stats.onThreads > 5, `${stats.onThreads} batches on the thread, ${stats.here} here`);
  t.log(`${one.length} sentences; ${stats.onThreads} batches on the thread, ${stats.here} here`);
});

test('a worker shard keeps the numbering of readSentences', async (t) => {
  const shard = { index: 1, count: 3 };
  const threaded = await lastValueFrom(tokenizedSentences(files, tokenizer, { threads: 2, shard }).pipe(toArray()));
  t.deepEqual(plain(threaded), plain(await sequential(files, { shard })));
});

test('skipped lines and files are reported as one thread reports them, and their neighbours kept', async (t) => {
  const bad = join(dir, 'bad.txt');
  const binary = join(dir, 'binary.txt');
  await writeFile(
    bad,
    Buffer.concat([Buffer.from('Good line one.\n\n'), Buffer.from([0xc3, 0x28, 10]), Buffer.from('\nGood again.\n')]),
  );
  await writeFile(binary, Buffer.from([0x50, 0x4b, 0, 0, 1, 2]));
  const inputs = [files[1]!, bad, binary, files[3]!];
  const skipsOf = async (threads: number): Promise<[TokenizedSentence[], TextSkip[]]> => {
    const skips: TextSkip[] = [];
    const onSkip = (s: TextSkip): number => skips.push(s);
    const out = await lastValueFrom(
      tokenizedSentences(inputs, tokenizer, { threads, onInvalid: 'skip', onSkip }).pipe(toArray()),
    );
    return [out, skips];
  };
  const [threaded, threadedSkips] = await skipsOf(2);
  const [one, oneSkips] = await skipsOf(1);
  t.deepEqual(plain(threaded), plain(one));
  t.deepEqual(threadedSkips, oneSkips);
  t.deepEqual(
    oneSkips.map((s) => s.reason),
    ['invalid-utf8', 'binary'],
  );
});

test('an invalid line fails after the sentences one thread gives before it, with the named error', async (t) => {
  const bad = join(dir, 'bad-late.txt');
  await writeFile(bad, Buffer.concat([Buffer.from('Fine text.\n'), Buffer.from([0xff, 10])]));
  const until = (threads: number): Promise<[TokenizedSentence[], unknown]> => {
    const seen: TokenizedSentence[] = [];
    return new Promise((resolve) =>
      tokenizedSentences([files[1]!, bad], tokenizer, { threads }).subscribe({
        next: (s) => seen.push(s),
        error: (error: unknown) => resolve([seen, error]),
        complete: () => resolve([seen, undefined]),
      }),
    );
  };
  const [seen, error] = await until(2);
  const [oneSeen, oneError] = await until(1);
  t.true(error instanceof InvalidUtf8Error);
  t.is((error as Error).message, (oneError as Error).message);
  t.regex((error as Error).message, /bad-late\.txt:2: not valid UTF-8/);
  t.deepEqual(plain(seen), plain(oneSeen));
  t.true(seen.length >= (await sequential([files[1]!])).length);
});

test('an empty corpus and a bad thread count are named errors', async (t) => {
  const empty = join(dir, 'empty.txt');
  await writeFile(empty, '\n\n');
  await t.throwsAsync(lastValueFrom(tokenizedSentences([empty], tokenizer, { threads: 2 })), {
    instanceOf: EmptyCorpusError,
  });
  t.throws(() => tokenizedSentences(files, tokenizer, { threads: 0 }), { instanceOf: OptionError, message: /threads/ });
});

test('a consumer that stops early gets the first sentences', async (t) => {
  const first = await lastValueFrom(tokenizedSentences(files, tokenizer, { threads: 2 }).pipe(take(7), toArray()));
  t.deepEqual(plain(first), plain((await sequential(files)).slice(0, 7)));
});

test('a tokenizing thread that cannot start leaves every batch to this thread, with the same sentences', async (t) => {
  // The thread rebuilds the tokenizer from its JSON: one it cannot read fails the thread's start.
  const unreadable = Object.assign(tokenizerFromJson(tokenizer.toJSON()), { toJSON: () => ({ model: null }) });
  const valve = new Valve();
  valve.close();
  setTimeout(() => valve.open(), 1000);
  const stats = { onThreads: 0, here: 0 };
  const out = await lastValueFrom(
    tokenizedSentences(files.slice(0, 2), unreadable, { threads: 2, valve, stats }).pipe(toArray()),
  );
  t.deepEqual(plain(out), plain(await sequential(files.slice(0, 2))));
  t.is(stats.onThreads, 0);
  t.true(stats.here > 10);
});

test('a tokenizing thread that dies holding batches hands them back: they are encoded here, same sentences', async (t) => {
  const stats = { onThreads: 0, here: 0 };
  let ended = false;
  const out = await lastValueFrom(
    tokenizedSentences(files, tokenizer, {
      threads: 2,
      stats,
      // Ended as its first ids arrive: it holds the next batch sent (or is encoding it).
      onThread: (worker) =>
        worker.on('message', (message: object) => {
          if ('seq' in message && !ended) {
            ended = true;
            void worker.terminate();
          }
        }),
    }).pipe(toArray()),
  );
  t.true(ended, 'the thread took a batch before it was ended');
  t.deepEqual(plain(out), plain(await sequential(files)));
  t.true(stats.onThreads >= 2, `${stats.onThreads} batches went to the thread`);
});
