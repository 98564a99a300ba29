// `npx tsx bench/runGuards.ts [--run DIR]`: the Done-when figures of issue 10 for runs, printed as JSON:
// pretrain into an existing run without --resume (exit code, run files unchanged), --lr 1e308 (exit code), and a
// 5 MB single-line text: seconds to its first step, and seconds from SIGTERM to exit at several points of the run.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../core/rng.ts';

const CLI = join(import.meta.dirname, '..', 'bin', 'tempo-ssl.js');
const dir = await mkdtemp(join(tmpdir(), 'tempo-guards-'));

interface Outcome {
  code: number | null;
  stderr: string;
  /** Seconds from start to the first "step 1/" line, if any. */
  firstStepS?: number;
  /** Seconds from SIGTERM to exit, when one was sent. */
  exitAfterSignalS?: number;
}

/** Runs the CLI; with `signalAfterS`, sends SIGTERM that many seconds after the start. */
async function cli(args: string[], signalAfterS?: number): Promise<Outcome> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const outcome: Outcome = { code: null, stderr: '' };
  const seen = (d: Buffer): void => {
    outcome.stderr += String(d);
    if (outcome.firstStepS === undefined && /step 1\//.test(outcome.stderr))
      outcome.firstStepS = (performance.now() - t0) / 1000;
  };
  child.stderr.on('data', seen);
  child.stdout.on('data', seen);
  let signalled = 0;
  if (signalAfterS !== undefined)
    setTimeout(() => {
      signalled = performance.now();
      child.kill('SIGTERM');
    }, signalAfterS * 1000);
  [outcome.code] = (await once(child, 'exit')) as [number | null];
  if (signalled) outcome.exitAfterSignalS = Math.round(performance.now() - signalled) / 1000;
  return outcome;
}

const hash = (path: string): string =>
  existsSync(path) ? createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 12) : 'missing';
const lastLine = (o: Outcome): string => o.stderr.trim().split('\n').at(-1) ?? '';

// A small corpus and a first run to overwrite.
const rng = new Rng(1);
const words = 'the cat sat on a mat and then he said hello to my friend who was very happy about it today'.split(' ');
// Capitalized: ICU does not end a sentence before a lowercase word, and NSP needs two sentences a paragraph.
const sentence = (): string =>
  'The ' + Array.from({ length: 4 + rng.int(10) }, () => words[rng.int(words.length)]).join(' ') + '. ';
const corpus = join(dir, 'corpus.txt');
await writeFile(corpus, Array.from({ length: 200 }, () => sentence() + sentence() + '\n').join('\n'));
const small = ['--tasks', 'nsp', '--steps', '4', '--batch', '8', '--vocab-size', '200', '--feature-size', '16'];
const run = join(dir, 'run');
await cli(['pretrain', '--text', corpus, ...small, '--out', run]);
const files = ['metrics.jsonl', 'checkpoint/state.json', 'encoder/weights.bin'];
const before = files.map((f) => hash(join(run, f)));
const again = await cli(['pretrain', '--text', corpus, ...small, '--steps', '2', '--out', run]);
const after = files.map((f) => hash(join(run, f)));
const diverged = await cli(['pretrain', '--text', corpus, ...small, '--lr', '1e308', '--out', join(dir, 'lr')]);

// 5 MB on one line.
let line = '';
while (line.length < 5 * 1024 * 1024) line += sentence();
const big = join(dir, 'line.txt');
await writeFile(big, line);
const bigArgs = (out: string): string[] => [
  'pretrain',
  '--text',
  big,
  '--tasks',
  'nsp,mlm',
  '--steps',
  '400',
  '--batch',
  '8',
  '--out',
  join(dir, out),
];
const firstStep = await cli(bigArgs('big-first'), 25);
const stops = [];
for (const s of [1.5, 3, 5, 8, 12, 20]) {
  const o = await cli(bigArgs(`big-${s}`), s);
  stops.push({ signalAtS: s, exitAfterSignalS: o.exitAfterSignalS, code: o.code, last: lastLine(o).slice(0, 100) });
}
await rm(dir, { recursive: true, force: true });
console.log(
  JSON.stringify(
    {
      pretrainIntoExistingRun: {
        code: again.code,
        runUnchanged: before.join() === after.join(),
        message: lastLine(again),
      },
      lr1e308: { code: diverged.code, message: lastLine(diverged) },
      fiveMbSingleLine: { firstStepS: firstStep.firstStepS, stops },
    },
    null,
    2,
  ),
);
