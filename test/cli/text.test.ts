import { CLI, runCli } from './_runCli.ts';
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processCorpus } from '../../recipes/processCorpus.ts';
import { WordPiece } from '../../text/tokenizers/WordPiece.ts';
import { writeCorpus, writeDailyDialog } from './_textFixtures.ts';

// The cpu backend loads everywhere and the runs here are tiny.

/** Runs the CLI to completion (see `runCli`). */
const cli = (args: string[]) => runCli(args, 'cpu');

/** The last line of stderr, after checking that the CLI failed with exactly one line of its own. */
function oneLineError(
  t: { is: (a: unknown, b: unknown, m?: string) => void },
  result: { code: number; stderr: string },
): string {
  t.is(result.code, 1, result.stderr);
  const lines = result.stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('tempo-ssl:'));
  t.is(lines.length, 1, result.stderr);
  return lines[0] ?? '';
}

let dir = '';
let corpus = '';
let daily = '';
let tokenizer = '';

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-text-cli-'));
  corpus = await writeCorpus(dir, 'corpus.txt', 40);
  daily = await writeDailyDialog(dir, 'dialogues_train.txt', 24);
  const trained = await WordPiece.train([await readFile(corpus, 'utf8'), await readFile(daily, 'utf8')], {
    vocabSize: 120,
  });
  tokenizer = join(dir, 'tokenizer.json');
  await trained.save(tokenizer);
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

const small = ['--steps', '2', '--batch', '4', '--max-length', '12', '--feature-size', '16', '--json'];

test('the text commands are listed in --help', async (t) => {
  const result = await cli(['--help']);
  t.is(result.code, 0);
  for (const command of ['score-dialogue', 'serve', 'process-corpus'])
    t.regex(result.stdout, new RegExp(`\\n  ${command} `));
});

test('pretrain --text trains a tokenizer, the encoder and each head, and --resume continues the run', async (t) => {
  const out = join(dir, 'text-run');
  const first = await cli([
    'pretrain',
    '--text',
    corpus,
    '--tasks',
    'nsp,mlm,skipgram',
    '--vocab-size',
    '100',
    '--out',
    out,
    ...small,
  ]);
  t.is(first.code, 0, first.stderr);
  const summary = JSON.parse(first.stdout) as {
    samples: Record<string, Record<string, number | string>>;
    corpusTokens: number;
  };
  t.like(summary, { steps: 2, startStep: 0, stoppedBy: 'steps' });
  // Issue 9: word2vec reads the counts of a pass over the corpus; NSP's label balance and MLM's baseline are reported.
  t.true(summary.corpusTokens > 100, `corpusTokens ${summary.corpusTokens}`);
  const { nsp, mlm } = summary.samples;
  t.is(Number(nsp!.positives) + Number(nsp!.negatives), Number(nsp!.emitted));
  t.true(Number(mlm!.baseline) > 0 && Number(mlm!.baseline) < 1 && typeof mlm!.mostFrequentToken === 'string');
  for (const path of [
    'tokenizer.json',
    'run.json',
    'encoder/model.json',
    'heads/nsp/model.json',
    'heads/mlm/model.json',
    'heads/skipgram/model.json',
    'checkpoint/state.json',
  ]) {
    t.true(existsSync(join(out, path)), path);
  }
  const info = JSON.parse(await readFile(join(out, 'run.json'), 'utf8'));
  t.like(info, { kind: 'text', tokenizer: 'tokenizer.json', taskConfig: { maxLength: 12 } });
  const resumed = await cli([
    'pretrain',
    '--text',
    corpus,
    '--tasks',
    'nsp,mlm,skipgram',
    '--vocab-size',
    '100',
    '--out',
    out,
    ...small,
    '--steps',
    '3',
    '--resume',
  ]);
  t.is(resumed.code, 0, resumed.stderr);
  t.like(JSON.parse(resumed.stdout), { steps: 3, startStep: 2 });
  const line = oneLineError(t, await cli(['score-dialogue', '--model', out, '--input', daily]));
  t.regex(line, /no heads\/dialogue-order.*--tasks dialogue-order/);
});

test('pretrain --dialogues then score-dialogue writes one JSON line per dialogue with scores in [0, 1]', async (t) => {
  const out = join(dir, 'dialogue-run');
  const trained = await cli(['pretrain', '--dialogues', daily, '--tokenizer', tokenizer, '--out', out, ...small]);
  t.is(trained.code, 0, trained.stderr);
  t.true(existsSync(join(out, 'heads', 'dialogue-order', 'model.json')));
  const scored = await cli(['score-dialogue', '--model', out, '--input', daily, '--json']);
  t.is(scored.code, 0, scored.stderr);
  const lines = scored.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.is(lines.length, 24);
  t.deepEqual(
    lines.map((l) => l.id),
    Array.from({ length: 24 }, (_, i) => String(i + 1)),
  );
  const dialogues = (await readFile(daily, 'utf8')).trim().split('\n');
  lines.forEach((l, i) => {
    t.true(l.score >= 0 && l.score <= 1);
    t.is(l.turns.length, dialogues[i]!.split('__eou__').length - 1);
    t.true(l.turns.every((s: number) => s >= 0 && s <= 1));
  });
});

test('process-corpus killed after its first shard and rerun ends with the bytes of a clean run', async (t) => {
  const big = await writeCorpus(dir, 'big.txt', 500, 5);
  const args = (out: string): string[] => [
    'process-corpus',
    '--input',
    big,
    '--tasks',
    'nsp,mlm',
    '--tokenizer',
    tokenizer,
    '--out',
    out,
    '--shard-size',
    '20',
    '--seed',
    '7',
  ];
  const clean = join(dir, 'pc-clean');
  const killed = join(dir, 'pc-killed');
  // The clean run in this process (the same code the CLI runs), to spare a CLI start.
  await processCorpus({
    text: [big],
    dialogues: [big],
    tasks: ['nsp', 'mlm'],
    tokenizer,
    outDir: clean,
    shardSize: 20,
    seed: 7,
    taskConfig: { maxLength: 32, turns: 3 },
    dialogueFormat: 'auto',
    onInvalid: 'fail',
  });
  const child = spawn(process.execPath, [CLI, ...args(killed)], {
    stdio: 'ignore',
    env: { ...process.env, TEMPO_BACKEND: 'cpu' },
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  while (child.exitCode === null && !existsSync(join(killed, 'shard-00001.arrow')))
    await new Promise((r) => setTimeout(r, 5));
  child.kill('SIGKILL');
  await exited;
  const manifest = JSON.parse(await readFile(join(killed, 'manifest.json'), 'utf8'));
  t.false(manifest.complete, 'the run was killed before it finished');
  const rerun = await cli([...args(killed), '--json']);
  t.is(rerun.code, 0, rerun.stderr);
  const summary = JSON.parse(rerun.stdout);
  t.true(summary.reused >= 1 && summary.written >= 1, JSON.stringify(summary));
  const files = (await readdir(clean)).sort();
  t.deepEqual((await readdir(killed)).sort(), files);
  for (const f of files) t.true((await readFile(join(clean, f))).equals(await readFile(join(killed, f))), f);
});

test('pretrain --shards trains on samples written by process-corpus', async (t) => {
  const shards = join(dir, 'shards');
  await processCorpus({
    text: [corpus],
    dialogues: [daily],
    tasks: ['nsp', 'dialogue-order'],
    tokenizer,
    outDir: shards,
    taskConfig: { maxLength: 12 },
    shardSize: 50,
  });
  const out = join(dir, 'shard-run');
  const trained = await cli([
    'pretrain',
    '--shards',
    shards,
    '--tasks',
    'nsp,dialogue-order',
    '--out',
    out,
    ...small.filter((a, i, all) => a !== '--max-length' && all[i - 1] !== '--max-length'),
  ]);
  t.is(trained.code, 0, trained.stderr);
  t.like(JSON.parse(trained.stdout), { steps: 2 });
  t.like(JSON.parse(await readFile(join(out, 'run.json'), 'utf8')), { shards, taskConfig: { maxLength: 12 } });
});

const binary = Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(64), Buffer.from('zip data')]);

const failsWith = test.macro(async (t, file: string, content: string | Buffer, args: string[], message: RegExp) => {
  const path = join(dir, file);
  await writeFile(path, content);
  const line = oneLineError(
    t,
    await cli([
      ...args.map((a) => (a === 'FILE' ? path : a)),
      '--tokenizer',
      tokenizer,
      '--out',
      join(dir, `out-${file}`),
    ]),
  );
  t.regex(line, message);
  t.true(line.includes(path), line);
});

test(
  'a binary file as a corpus is a named error',
  failsWith,
  'image.txt',
  binary,
  ['process-corpus', '--input', 'FILE', '--tasks', 'nsp'],
  /looks binary \(NUL byte\).*--on-invalid skip|looks binary \(NUL byte\)/,
);
test(
  'an empty corpus file is a named error',
  failsWith,
  'empty.txt',
  '',
  ['process-corpus', '--input', 'FILE', '--tasks', 'mlm'],
  /corpus is empty/,
);
test(
  'a bad JSONL dialogue line is a named error with its line number',
  failsWith,
  'bad.jsonl',
  '{"turns": ["a", "b"]}\n{"turns": [oops\n',
  ['process-corpus', '--dialogues', 'FILE', '--tasks', 'dialogue-order'],
  /bad\.jsonl:2: not valid JSON/,
);

test('--on-invalid skip counts binary files and bad records and goes on', async (t) => {
  const blob = join(dir, 'skip-blob.txt');
  await writeFile(blob, binary);
  const jsonl = join(dir, 'skip.jsonl');
  await writeFile(
    jsonl,
    '{"turns": ["Hello , a cat .", "Well , a dog .", "Well , home ."]}\nnot json\n{"turns": []}\n{"turns": ["Hi .", "Bye ."]}\n',
  );
  const result = await cli([
    'process-corpus',
    '--input',
    blob,
    corpus,
    '--dialogues',
    jsonl,
    '--tasks',
    'nsp,dialogue-order',
    '--tokenizer',
    tokenizer,
    '--out',
    join(dir, 'skipped'),
    '--on-invalid',
    'skip',
    '--json',
  ]);
  t.is(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout);
  t.like(summary, { skipped: { binary: 1, 'bad-record': 2 } });
  t.true(summary.counts['dialogue-order'] >= 2 && summary.counts.nsp > 0);
});

test('pretrain needs exactly one kind of input', async (t) => {
  t.regex(oneLineError(t, await cli(['pretrain', '--out', join(dir, 'none')])), /exactly one source.*got "no input"/);
  t.regex(
    oneLineError(t, await cli(['pretrain', '--video', 'a.mp4', '--text', corpus, '--out', join(dir, 'two')])),
    /exactly one source.*--video and --text/,
  );
});
