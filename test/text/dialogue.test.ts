import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { from, lastValueFrom, toArray } from 'rxjs';
import { DialogueFormatError, OptionError } from '../../core/errors.ts';
import {
  parseDialogues,
  readDialogues,
  type Dialogue,
  type DialogueStats,
  type ReadDialoguesOptions,
} from '../../text/dialogue.ts';
import type { Line } from '../../text/readCorpus.ts';

let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-dialogue-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fixture(name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}
const read = (input: string | string[], options?: ReadDialoguesOptions): Promise<Dialogue[]> =>
  lastValueFrom(readDialogues(input, options).pipe(toArray()));
const brief = (ds: Dialogue[]) => ds.map((d) => `${d.id}:${d.turns.join('|')}`);

const DAILY =
  'Say , Jim , how about a beer ? __eou__ You know that is tempting . __eou__ \n\nHi ! __eou__ Hello . __eou__ Bye . __eou__\n';

test('DailyDialog lines become dialogues whose id is the line number', async (t) => {
  const path = await fixture('dialogues_train.txt', DAILY);
  const ds = await read(path, { format: 'dailydialog' });
  t.deepEqual(brief(ds), ['1:Say , Jim , how about a beer ?|You know that is tempting .', '3:Hi !|Hello .|Bye .']);
  t.true(ds.every((d) => d.source === path));
});

test('JSONL records become dialogues, numeric ids as strings', async (t) => {
  const path = await fixture(
    'chats.jsonl',
    '{"id": "a1", "turns": ["hi", "hello"]}\r\n\n{"id": 7, "turns": ["你好", "再见"]}\n{"turns": ["no id"]}\n',
  );
  t.deepEqual(brief(await read(path, { format: 'jsonl' })), ['a1:hi|hello', '7:你好|再见', '4:no id']);
});

test('a bad JSONL line fails with DialogueFormatError naming file and line', async (t) => {
  const path = await fixture('bad.jsonl', '{"id": 1, "turns": ["ok"]}\n{"id": 2, "turns": "not a list"}\n{oops\n');
  const err = await t.throwsAsync(read(path), { instanceOf: DialogueFormatError });
  t.is(err!.line, 2);
  t.regex(err!.message, /bad\.jsonl:2: "turns" must be a non-empty array/);
});

test('bad JSONL lines are skipped and counted under onInvalid skip', async (t) => {
  const path = await fixture(
    'bad-skip.jsonl',
    '{"id": 1, "turns": ["ok"]}\n{"id": 2, "turns": "not a list"}\n{oops\n[1, 2]\n{"id": 5, "turns": ["fine"]}\n',
  );
  const stats: DialogueStats = { dialogues: 0, turns: 0, skipped: 0 };
  const lines: number[] = [];
  const ds = await read(path, { onInvalid: 'skip', stats, onSkip: (e) => lines.push(e.line) });
  t.deepEqual(brief(ds), ['1:ok', '5:fine']);
  t.deepEqual(stats, { dialogues: 2, turns: 2, skipped: 3 });
  t.deepEqual(lines, [2, 3, 4]);
});

test('plain text with blank lines between dialogues gives one turn a line', async (t) => {
  const path = await fixture('chat.txt', '\nHow are you?\nFine, thanks.\n\n\nWhere to?\r\nHome.\r\nOK.\n  \nLast one.');
  t.deepEqual(brief(await read(path, { format: 'text' })), [
    '1:How are you?|Fine, thanks.',
    '2:Where to?|Home.|OK.',
    '3:Last one.',
  ]);
});

test('auto detects each file by extension or first line', async (t) => {
  const daily = await fixture('daily.txt', DAILY);
  const jsonl = await fixture('auto.data', '\n{"id": "x", "turns": ["a", "b"]}\n');
  const text = await fixture('plain.txt', 'one\ntwo\n');
  const ds = await read([daily, jsonl, text]);
  t.deepEqual(
    ds.map((d) => `${d.source.slice(dir.length + 1)}#${d.id}`),
    ['daily.txt#1', 'daily.txt#3', 'auto.data#x', 'plain.txt#1'],
  );
});

test('dialogues are read from stdin', async (t) => {
  const stdin = Readable.from(['{"id": 1, "turns": ["a"]}\n']);
  t.deepEqual(brief(await read('-', { read: { stdin } })), ['1:a']);
});

test('a DailyDialog line without __eou__ at its end is reported', async (t) => {
  const lines: Line[] = [{ text: 'Hi . __eou__ Hello .', source: 'd.txt', line: 9 }];
  const err = await t.throwsAsync(lastValueFrom(from(lines).pipe(parseDialogues({ format: 'dailydialog' }))), {
    instanceOf: DialogueFormatError,
  });
  t.regex(err!.message, /d\.txt:9: .*__eou__/);
});

test('an unknown format fails with OptionError when the operator is built', (t) => {
  t.throws(() => parseDialogues({ format: 'csv' as 'text' }), { instanceOf: OptionError, message: /format/ });
});
