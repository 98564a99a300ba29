import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { from, lastValueFrom, toArray } from 'rxjs';
import { StoppedError } from '../../core/errors.ts';
import { trainCorpusTokenizer } from '../../recipes/corpusTokenizer.ts';
import type { Line } from '../../text/readCorpus.ts';
import { cutText, segmentSentences, splitDocuments } from '../../text/segment.ts';

const sentences = Array.from(
  { length: 3000 },
  (_, i) => `Sentence number ${i} is here, with Mr. Smith${i % 3 ? '.' : '!'}`,
);

test('cutText cuts long text into pieces within the limit, at sentence ends, losing nothing', (t) => {
  const text = sentences.join(' ');
  const pieces = cutText(text, 1000);
  t.true(pieces.length > 50);
  t.true(pieces.every((p) => p.length <= 1000));
  t.is(pieces.join(''), text);
  t.true(pieces.slice(0, -1).every((p) => /[.!] $/.test(p)));
  // No space and no sentence end: cut at the limit, never inside a surrogate pair.
  const emoji = '😀'.repeat(1000);
  const hard = cutText(emoji, 101);
  t.is(hard.join(''), emoji);
  t.true(hard.every((p) => p.length <= 101 && !/[\uD800-\uDBFF]$/.test(p)));
});

// issue 10, item 4: sentence splitting grew quadratically with line length (1 MiB: 9.1 s) because
// Intl.Segmenter was handed the whole line.
test('segmentSentences hands Intl.Segmenter bounded pieces and finds the same sentences', (t) => {
  const lengths: number[] = [];
  // eslint-disable-next-line @typescript-eslint/unbound-method -- restored below, called with its own this
  const original = Intl.Segmenter.prototype.segment;
  Intl.Segmenter.prototype.segment = function (this: Intl.Segmenter, input: string) {
    lengths.push(input.length);
    return original.call(this, input);
  };
  try {
    t.deepEqual(segmentSentences(sentences.join(' ')), sentences);
  } finally {
    Intl.Segmenter.prototype.segment = original;
  }
  t.true(lengths.length > 1);
  t.true(Math.max(...lengths) <= 4096, `largest piece ${Math.max(...lengths)}`);
});

test('splitDocuments closes a block at maxBlockChars even without a blank line', async (t) => {
  const lines: Line[] = Array.from({ length: 10 }, () => ({ text: 'x'.repeat(40), source: 'a.txt', line: 1 }));
  const blocks = await lastValueFrom(from(lines).pipe(splitDocuments(100), toArray()));
  t.deepEqual(
    blocks.map((b) => b.lines.length),
    [3, 3, 3, 1],
  );
});

test('tokenizer training reports progress while reading, and a stop signal ends it with StoppedError', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-longtext-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'one-line.txt');
  await writeFile(file, sentences.join(' ').repeat(4));
  const seen: number[] = [];
  await trainCorpusTokenizer({
    text: [file],
    vocabSize: 60,
    progressEveryMs: 0,
    onProgress: ({ bytes }) => seen.push(bytes),
  });
  t.true(seen.length > 1);
  t.true(seen.at(-1)! > seen[0]!);
  const controller = new AbortController();
  let lines = 0;
  const stopped = trainCorpusTokenizer({
    text: [file],
    signal: controller.signal,
    progressEveryMs: 0,
    onProgress: () => ++lines === 2 && controller.abort(),
  });
  await t.throwsAsync(stopped, { instanceOf: StoppedError, message: /while training the tokenizer/ });
});
