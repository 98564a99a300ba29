import test from 'ava';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { firstValueFrom, lastValueFrom, take, toArray } from 'rxjs';
import { BinaryCorpusError, CorpusError, EmptyCorpusError, InvalidUtf8Error, OptionError } from '../../core/errors.ts';
import { Valve } from '../../core/valve.ts';
import { emptyCorpusStats, readLines, type Line, type ReadLinesOptions } from '../../text/readCorpus.ts';

let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-corpus-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fixture(name: string, content: string | Uint8Array): Promise<string> {
  const path = join(dir, name);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
  return path;
}

const read = (inputs: string | string[], options?: ReadLinesOptions): Promise<Line[]> =>
  lastValueFrom(readLines(inputs, options).pipe(toArray()));
const texts = (lines: Line[]): string[] => lines.map((l) => l.text);

test('LF and CRLF files give the same lines, numbered from 1', async (t) => {
  const lf = await fixture('lf.txt', 'one\ntwo\n\nfour\n');
  const crlf = await fixture('crlf.txt', 'one\r\ntwo\r\n\r\nfour');
  t.deepEqual(texts(await read(lf)), ['one', 'two', '', 'four']);
  const lines = await read(crlf);
  t.deepEqual(texts(lines), ['one', 'two', '', 'four']);
  t.deepEqual(
    lines.map((l) => l.line),
    [1, 2, 3, 4],
  );
  t.true(lines.every((l) => l.source === crlf));
});

test('a gzipped file is read through gunzip', async (t) => {
  const gz = await fixture('book.txt.gz', gzipSync(Buffer.from('héllo wörld\r\nzweite Zeile\n')));
  t.deepEqual(texts(await read(gz)), ['héllo wörld', 'zweite Zeile']);
});

test('a corrupt .gz file fails with a CorpusError naming the file', async (t) => {
  const bad = await fixture('bad.txt.gz', 'not gzip at all\n');
  const err = await t.throwsAsync(read(bad), { instanceOf: CorpusError });
  t.regex(err!.message, /bad\.txt\.gz.*gzip/);
});

test('stdin is read for the input "-" from an injected Readable', async (t) => {
  const stdin = Readable.from([Buffer.from('alpha\nbe'), Buffer.from('ta\r\ngamma')]);
  const lines = await read('-', { stdin });
  t.deepEqual(texts(lines), ['alpha', 'beta', 'gamma']);
  t.deepEqual(
    lines.map((l) => `${l.source}:${l.line}`),
    ['-:1', '-:2', '-:3'],
  );
});

test('folders are walked recursively for text-like files, in sorted order', async (t) => {
  await fixture('tree/b.txt', 'b\n');
  await fixture('tree/a/z.md', 'z\n');
  await fixture('tree/a/skip.png', 'nope\n');
  await fixture('tree/.hidden.txt', 'hidden\n');
  t.deepEqual(texts(await read(join(dir, 'tree'))), ['z', 'b']);
});

test('globs expand to their sorted matches', async (t) => {
  await fixture('glob/2.txt', 'two\n');
  await fixture('glob/1.txt', 'one\n');
  await fixture('glob/x.md', 'md\n');
  t.deepEqual(texts(await read(join(dir, 'glob/*.txt'))), ['one', 'two']);
});

test('a glob keeps only text-like files, as a folder does', async (t) => {
  await fixture('mixed/a.txt', 'a\n');
  await fixture('mixed/b.txt.gz', gzipSync(Buffer.from('b\n')));
  await fixture('mixed/photo.png', 'not text\n');
  t.deepEqual(texts(await read(join(dir, 'mixed/*'))), ['a', 'b']);
});

test('a missing file or an empty glob fails with a CorpusError', async (t) => {
  await t.throwsAsync(read(join(dir, 'nope.txt')), { instanceOf: CorpusError, message: /not found: .*nope\.txt/ });
  await t.throwsAsync(read(join(dir, 'nothing/*.txt')), { instanceOf: CorpusError, message: /matches no file/ });
});

test('invalid UTF-8 fails with the file and line under onInvalid fail', async (t) => {
  const bad = await fixture(
    'latin1.txt',
    Buffer.concat([Buffer.from('ok\nfine\ncaf'), Buffer.from([0xe9]), Buffer.from('\nend\n')]),
  );
  const err = await t.throwsAsync(read(bad), { instanceOf: InvalidUtf8Error });
  t.is(err!.line, 3);
  t.is(err!.source, bad);
  t.regex(err!.message, /latin1\.txt:3: not valid UTF-8.*iconv/);
});

test('invalid UTF-8 lines are skipped and counted under onInvalid skip', async (t) => {
  const bad = await fixture(
    'latin1-skip.txt',
    Buffer.concat([Buffer.from('ok\ncaf'), Buffer.from([0xe9]), Buffer.from('\nend\n')]),
  );
  const stats = emptyCorpusStats();
  const skipped: string[] = [];
  let summarized = 0;
  const lines = await read(bad, {
    onInvalid: 'skip',
    stats,
    onSkip: (s) => skipped.push(`${s.line}:${s.reason}`),
    summary: () => summarized++,
  });
  t.deepEqual(
    lines.map((l) => `${l.line}:${l.text}`),
    ['1:ok', '3:end'],
  );
  t.is(stats.invalidLines, 1);
  t.is(stats.lines, 2);
  t.deepEqual(skipped, ['2:invalid-utf8']);
  t.is(summarized, 1);
});

test('a binary file fails with BinaryCorpusError, or is skipped and counted', async (t) => {
  const bin = await fixture('image.txt', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0a, 0x00, 0x00, 0x01]));
  const good = await fixture('good.txt', 'text\n');
  await t.throwsAsync(read(bin), { instanceOf: BinaryCorpusError, message: /image\.txt:2: looks binary/ });
  const stats = emptyCorpusStats();
  t.deepEqual(texts(await read([bin, good], { onInvalid: 'skip', stats })), ['text']);
  t.is(stats.binaryFiles, 1);
});

test('an empty corpus fails with EmptyCorpusError', async (t) => {
  const empty = await fixture('empty.txt', '');
  const blank = await fixture('blank.txt', '\n  \n\r\n');
  const err = await t.throwsAsync(read([empty, blank]), { instanceOf: EmptyCorpusError });
  t.regex(err!.message, /empty\.txt, .*blank\.txt/);
});

test('an over-long line is cut into bounded pieces at character boundaries', async (t) => {
  const long = 'ab€'.repeat(1000); // 5 bytes a repeat, 5000 bytes
  const file = await fixture('long.txt', `short\n${long}\nafter\n`);
  const stats = emptyCorpusStats();
  const lines = await read(file, { maxLineBytes: 64, chunkBytes: 16, stats });
  const pieces = lines.filter((l) => l.line === 2);
  t.true(pieces.length >= 5000 / 64);
  t.true(pieces.every((p) => Buffer.byteLength(p.text) <= 64));
  t.is(pieces.map((p) => p.text).join(''), long);
  t.is(lines.at(-1)!.text, 'after');
  t.is(stats.longLinesSplit, 1);
});

test('an over-long line is dropped and counted under longLines skip', async (t) => {
  const file = await fixture('long-skip.txt', `short\n${'x'.repeat(10_000)}\nafter`);
  const stats = emptyCorpusStats();
  const lines = await read(file, { maxLineBytes: 100, longLines: 'skip', chunkBytes: 1000, stats });
  t.deepEqual(
    lines.map((l) => `${l.line}:${l.text}`),
    ['1:short', '3:after'],
  );
  t.is(stats.longLinesSkipped, 1);
});

test('reading pauses while the valve is closed and resumes when it opens', async (t) => {
  const file = await fixture('valve.txt', Array.from({ length: 2000 }, (_, i) => `line ${i}`).join('\n'));
  const valve = new Valve();
  const seen: number[] = [];
  let closedAt = -1;
  await new Promise<void>((resolve, reject) => {
    readLines(file, { valve, chunkBytes: 256 }).subscribe({
      next: (l) => {
        seen.push(l.line);
        if (l.line === 10) {
          valve.close();
          closedAt = seen.length;
          // While closed, at most the rest of the current chunk may arrive.
          setTimeout(() => {
            t.true(seen.length - closedAt < 40, `read ${seen.length - closedAt} lines past a closed valve`);
            valve.open();
          }, 50);
        }
      },
      error: reject,
      complete: resolve,
    });
  });
  t.is(seen.length, 2000);
});

test('unsubscribing early stops reading', async (t) => {
  const file = await fixture('many.txt', 'x\n'.repeat(10_000));
  const first = await firstValueFrom(readLines(file).pipe(take(3), toArray()));
  t.deepEqual(texts(first), ['x', 'x', 'x']);
});

test('bad options fail when the stream is built', (t) => {
  t.throws(() => readLines('x', { maxLineBytes: 0 }), { instanceOf: OptionError, message: /maxLineBytes/ });
  t.throws(() => readLines('x', { onInvalid: 'ignore' as 'skip' }), { instanceOf: OptionError, message: /onInvalid/ });
});
