import test from 'ava';
import { lastValueFrom, of, from, toArray, Subject } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import type { Line } from '../../text/readCorpus.ts';
import { segmentSentences, segmentWords, splitDocuments, splitParagraphs, splitSentences } from '../../text/segment.ts';

const lines = (source: string, ...texts: string[]): Line[] => texts.map((text, i) => ({ text, source, line: i + 1 }));

test('English text splits into sentences, keeping titles like Mr. inside', (t) => {
  t.deepEqual(segmentSentences('Mr. Smith went to Washington. He arrived on Monday!  Did he? Yes.'), [
    'Mr. Smith went to Washington.',
    'He arrived on Monday!',
    'Did he?',
    'Yes.',
  ]);
});

test('Chinese text splits into sentences on CJK punctuation', (t) => {
  t.deepEqual(segmentSentences('我喜欢自然语言处理。今天天气很好！你呢？', { locale: 'zh' }), [
    '我喜欢自然语言处理。',
    '今天天气很好！',
    '你呢？',
  ]);
});

test('words are the word-like segments, in English and Chinese', (t) => {
  t.deepEqual(segmentWords("Don't stop, 3.14 times!"), ["Don't", 'stop', '3.14', 'times']);
  t.deepEqual(segmentWords('我喜欢自然语言处理。', 'zh'), ['我', '喜欢', '自然', '语言', '处理']);
});

test('a bad locale fails with OptionError', (t) => {
  t.throws(() => segmentWords('x', 'not a locale!'), { instanceOf: OptionError, message: /locale/ });
});

test('splitSentences turns a stream of paragraphs into a stream of sentences', async (t) => {
  const out = await lastValueFrom(of('One. Two.', '三。四。').pipe(splitSentences(), toArray()));
  t.deepEqual(out, ['One.', 'Two.', '三。', '四。']);
});

test('splitDocuments groups lines on blank lines and on a change of file', async (t) => {
  const input = [...lines('a.txt', '', 'first one', 'first two', '', '', 'second', '   '), ...lines('b.txt', 'third')];
  const docs = await lastValueFrom(from(input).pipe(splitDocuments(), toArray()));
  t.deepEqual(docs, [
    { lines: ['first one', 'first two'], source: 'a.txt', line: 2 },
    { lines: ['second'], source: 'a.txt', line: 6 },
    { lines: ['third'], source: 'b.txt', line: 1 },
  ]);
});

test('splitParagraphs joins wrapped lines with spaces', async (t) => {
  const paragraphs = await lastValueFrom(
    from(lines('book.txt', 'It was a truth', '  universally acknowledged.', '', 'Next.')).pipe(
      splitParagraphs(),
      toArray(),
    ),
  );
  t.deepEqual(
    paragraphs.map((p) => p.text),
    ['It was a truth universally acknowledged.', 'Next.'],
  );
});

test('splitDocuments passes errors down and emits nothing after unsubscription', (t) => {
  const source = new Subject<Line>();
  const seen: string[] = [];
  let error: unknown;
  const sub = source
    .pipe(splitDocuments())
    .subscribe({ next: (d) => seen.push(d.lines.join('|')), error: (e: unknown) => (error = e) });
  source.next({ text: 'a', source: 'x', line: 1 });
  source.next({ text: '', source: 'x', line: 2 });
  source.next({ text: 'b', source: 'x', line: 3 });
  sub.unsubscribe();
  source.complete();
  t.deepEqual(seen, ['a']);
  const failing = new Subject<Line>();
  failing.pipe(splitDocuments()).subscribe({ error: (e: unknown) => (error = e) });
  failing.error(new Error('boom'));
  t.is((error as Error).message, 'boom');
});
