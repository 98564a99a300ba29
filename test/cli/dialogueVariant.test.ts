import { runCli } from './_runCli.ts';
import test from 'ava';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../core/rng.ts';
import { DEFAULT_DIALOGUE_VARIANT } from '../../tasks/dialogue/utteranceOrder.ts';

// The cpu backend loads everywhere and the runs here are tiny.
const cli = (args: string[]) => runCli(args, 'cpu');

let dir = '';
let daily = '';
/** Turns of each dialogue of `daily`: 4 to 9, so some have no window of the pairs variant (6 turns). */
let lengths: number[] = [];

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-dialogue-variant-'));
  const rng = new Rng(3);
  const words = 'hello well yes no maybe tea rain home work later soon now'.split(' ');
  lengths = Array.from({ length: 16 }, (_, i) => 4 + (i % 6));
  const lines = lengths.map((n) =>
    Array.from({ length: n }, () => `${words[rng.int(words.length)]} ${words[rng.int(words.length)]} __eou__`).join(
      ' ',
    ),
  );
  daily = join(dir, 'dialogues.txt');
  await writeFile(daily, lines.join('\n') + '\n');
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

const small = ['--steps', '2', '--batch', '4', '--max-length', '8', '--feature-size', '8', '--json'];
const runInfo = async (out: string) => JSON.parse(await readFile(join(out, 'run.json'), 'utf8'));
const scores = async (out: string) => {
  const scored = await cli(['score-dialogue', '--model', out, '--input', daily, '--json']);
  return {
    ...scored,
    lines: scored.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l)),
  };
};

test('--dialogue-variant pairs is recorded in run.json and score-dialogue scores with it', async (t) => {
  const out = join(dir, 'pairs');
  const trained = await cli(['pretrain', '--dialogues', daily, '--dialogue-variant', 'pairs', '--out', out, ...small]);
  t.is(trained.code, 0, trained.stderr);
  t.is((await runInfo(out)).dialogueVariant, 'pairs');
  const { code, stderr, lines } = await scores(out);
  t.is(code, 0, stderr);
  t.is(lines.length, lengths.length);
  lines.forEach((line, i) => {
    if (lengths[i]! < 6) {
      t.is(line.score, null);
      t.regex(line.reason, /a window needs 6 consecutive turns \(three utterance pairs\)/);
    } else {
      t.true(line.score > 0 && line.score < 1);
      t.is(line.turns.length, lengths[i]);
    }
  });
});

test('without the flag a run trains the default variant; a run.json from before the field scores as utterances', async (t) => {
  const out = join(dir, 'default');
  const trained = await cli([
    'pretrain',
    '--dialogues',
    daily,
    '--dialogue-variant',
    'utterances',
    '--out',
    out,
    ...small,
  ]);
  t.is(trained.code, 0, trained.stderr);
  const plain = join(dir, 'plain');
  t.is((await cli(['pretrain', '--dialogues', daily, '--out', plain, ...small])).code, 0);
  t.is((await runInfo(plain)).dialogueVariant, DEFAULT_DIALOGUE_VARIANT);
  // An older run folder: the same utterances run without the field.
  const old = join(dir, 'old');
  await cp(out, old, { recursive: true });
  const { dialogueVariant, ...rest } = await runInfo(old);
  t.is(dialogueVariant, 'utterances');
  await writeFile(join(old, 'run.json'), JSON.stringify(rest));
  const [now, before] = [await scores(out), await scores(old)];
  t.is(before.code, 0, before.stderr);
  t.deepEqual(before.lines, now.lines);
  t.true(now.lines.every((line) => line.score !== null));
});

test('a bad variant, or another than the resumed run has, is a one-line error naming the flag', async (t) => {
  const bad = await cli(['pretrain', '--dialogues', daily, '--dialogue-variant', 'triples', '--out', join(dir, 'x')]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /--dialogue-variant.*triples.*(pairs|utterances)/s);
  const out = join(dir, 'resumed');
  t.is((await cli(['pretrain', '--dialogues', daily, '--dialogue-variant', 'pairs', '--out', out, ...small])).code, 0);
  const other = await cli([
    'pretrain',
    '--dialogues',
    daily,
    '--dialogue-variant',
    'utterances',
    '--out',
    out,
    ...small,
    '--steps',
    '3',
    '--resume',
  ]);
  t.is(other.code, 1);
  t.regex(other.stderr, /--dialogue-variant must be pairs, the variant of the run resumed.*got "utterances"/);
  const resumed = await cli(['pretrain', '--dialogues', daily, '--out', out, ...small, '--steps', '3', '--resume']);
  t.is(resumed.code, 0, resumed.stderr);
  t.like(JSON.parse(resumed.stdout), { steps: 3, startStep: 2 });
  t.is((await runInfo(out)).dialogueVariant, 'pairs');
});
