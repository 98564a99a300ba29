import { CLI, runCli } from './_runCli.ts';
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { truncateCopy } from '../../fixtures/edgeCaseVideos.ts';
import { generateLabelledClips } from '../../fixtures/syntheticVideos.ts';

/** Runs the CLI to completion (see `runCli`). */
const cli = (args: string[]) => runCli(args);

let dir: string;
let clipsDir: string;
let clip: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-cli-'));
  clipsDir = join(dir, 'clips');
  const { clips } = await generateLabelledClips({
    dir: clipsDir,
    seed: 2,
    count: 4,
    width: 32,
    height: 32,
    frames: 24,
  });
  clip = clips[0]!.path;
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

test('every command has --help', async (t) => {
  for (const command of [[], ['frames'], ['pretrain'], ['probe'], ['evaluate'], ['demo']]) {
    const result = await cli([...command, '--help']);
    t.is(result.code, 0, command.join(' '));
    t.regex(result.stdout, /Usage: tempo-ssl/);
  }
});

test('frames --json reports every frame of a video', async (t) => {
  const result = await cli(['frames', clip, '--json']);
  t.is(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout);
  t.like(summary, { frames: 24, width: 32, height: 32 });
  t.true(summary.seconds > 0 && summary.framesPerSecond > 0);
});

test('a missing file gives a one-line error naming it and a non-zero exit code', async (t) => {
  const result = await cli(['frames', join(dir, 'nope.mp4')]);
  t.is(result.code, 1);
  const lines = result.stderr.trim().split('\n');
  t.is(lines.length, 1, result.stderr);
  t.regex(lines[0]!, /video not found: .*nope\.mp4/);
});

test('a truncated video gives a one-line error naming it, with the stack only under --verbose', async (t) => {
  const truncated = await truncateCopy(clip, join(dir, 'truncated.mp4'), 0.4);
  const result = await cli(['frames', truncated]);
  t.is(result.code, 1);
  t.is(result.stderr.trim().split('\n').length, 1, result.stderr);
  t.regex(result.stderr, /truncated\.mp4/);
  t.notRegex(result.stderr, /\n\s+at /);
  const verbose = await cli(['--verbose', 'frames', truncated]);
  t.is(verbose.code, 1);
  t.regex(verbose.stderr, /\n\s+at /);
});

test('bad flags are refused with the flag named', async (t) => {
  const result = await cli(['pretrain', '--video', clip, '--out', join(dir, 'x'), '--steps', '-3']);
  t.not(result.code, 0);
  t.regex(result.stderr, /--steps/);
  const tasks = await cli(['pretrain', '--video', clip, '--out', join(dir, 'x'), '--tasks', 'nonsense']);
  t.not(tasks.code, 0);
  t.regex(tasks.stderr, /--tasks must be one of .*got "nonsense"/);
});

test('a pretrain killed with SIGKILL resumes from its last checkpoint with --resume', async (t) => {
  const out = join(dir, 'run');
  const args = [
    '--backend',
    'wasm',
    'pretrain',
    '--video',
    clipsDir,
    '--steps',
    '40',
    '--batch',
    '8',
    '--checkpoint-every',
    '5',
    '--width',
    '32',
    '--height',
    '32',
    '--out',
    out,
    '--json',
  ];
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const state = join(out, 'checkpoint', 'state.json');
  let killedAfter = 0;
  // Generous: CI machines are slow and shared; the loop ends as soon as the checkpoint appears.
  for (let waited = 0; waited < 240_000 && child.exitCode === null; waited += 100) {
    if (existsSync(state)) {
      const step = JSON.parse(await readFile(state, 'utf8')).step as number;
      if (step >= 10) {
        child.kill('SIGKILL');
        killedAfter = step;
        break;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.true(
    killedAfter >= 10 && killedAfter < 40,
    `killed after checkpoint step ${killedAfter}; exit ${child.exitCode}; stderr: ${stderr.slice(-500)}`,
  );
  await exited;
  const checkpointStep = JSON.parse(await readFile(state, 'utf8')).step as number;

  const resumed = await cli([...args, '--resume']);
  t.is(resumed.code, 0, resumed.stderr);
  const summary = JSON.parse(resumed.stdout);
  t.is(summary.startStep, checkpointStep);
  t.is(summary.steps, 40);
  const steps = (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).step);
  t.deepEqual(
    steps,
    Array.from({ length: 40 }, (_, i) => i + 1),
  );
  t.true(existsSync(join(out, 'encoder', 'model.json')));
});

/** IDX files of `count` 28x28 images: class 0 bright on top, class 1 bright at the bottom, with noise. */
async function writeIdxPair(name: string, count: number, offset = 0): Promise<[string, string]> {
  const images = Buffer.alloc(16 + count * 784);
  images.writeUInt32BE(0x803, 0);
  images.writeUInt32BE(count, 4);
  images.writeUInt32BE(28, 8);
  images.writeUInt32BE(28, 12);
  const labels = Buffer.alloc(8 + count);
  labels.writeUInt32BE(0x801, 0);
  labels.writeUInt32BE(count, 4);
  for (let i = 0; i < count; i++) {
    const label = i % 2;
    labels[8 + i] = label;
    for (let p = 0; p < 784; p++) {
      const top = p < 392;
      images[16 + i * 784 + p] = (top === (label === 0) ? 200 : 30) + (((i + offset) * 31 + p * 17) % 40);
    }
  }
  const paths: [string, string] = [join(dir, `${name}-images.idx.gz`), join(dir, `${name}-labels.idx`)];
  await writeFile(paths[0], gzipSync(images));
  await writeFile(paths[1], labels);
  return paths;
}

let tinyModel: Promise<string> | undefined;
/** A run folder of 3 pretraining steps on the test clips, made once for the tests that evaluate an encoder. */
function pretrainedTiny(): Promise<string> {
  const model = join(dir, 'probe-model');
  tinyModel ??= cli([
    '--backend',
    'wasm',
    'pretrain',
    '--video',
    clipsDir,
    '--steps',
    '3',
    '--batch',
    '4',
    '--width',
    '32',
    '--height',
    '32',
    '--out',
    model,
    '--json',
  ]).then((trained) => {
    if (trained.code !== 0) throw new Error(`pretrain failed: ${trained.stderr}`);
    return model;
  });
  return tinyModel;
}

test('probe --images reads IDX files and reports accuracy against a random-init encoder', async (t) => {
  const count = 80;
  const [images, labels] = await writeIdxPair('probe', count);
  const model = await pretrainedTiny();
  const result = await cli([
    '--backend',
    'wasm',
    'probe',
    '--model',
    model,
    '--images',
    images,
    '--labels',
    labels,
    '--json',
  ]);
  t.is(result.code, 0, result.stderr);
  const probe = JSON.parse(result.stdout);
  // Every accuracy a finite number in [0, 1]: NaN fails every comparison, so it must be refused explicitly.
  for (const key of ['accuracy', 'knnAccuracy', 'randomInitAccuracy', 'randomInitKnnAccuracy']) {
    t.true(Number.isFinite(probe[key]) && probe[key] >= 0 && probe[key] <= 1, `${key} ${probe[key]}`);
  }
  t.true(probe.accuracy > 0.9, `accuracy ${probe.accuracy}`);
  t.is(probe.trainCount + probe.testCount, count);
});

test('probe without labels is refused with the fix', async (t) => {
  const result = await cli(['probe', '--model', dir]);
  t.is(result.code, 1);
  t.regex(result.stderr, /exactly one of --video-labels FILE or --images IDX --labels IDX/);
});

/** Every number in a JSON value, with its path. */
function numbersIn(value: unknown, path = ''): [string, number][] {
  if (typeof value === 'number') return [[path, value]];
  if (value && typeof value === 'object')
    return Object.entries(value).flatMap(([key, inner]) => numbersIn(inner, `${path}.${key}`));
  return [];
}

/** Checks the evaluate JSON: the protocols named by the issue, each with finite accuracies in [0, 1]. */
function assertEvaluation(t: ExecutionContext, report: Record<string, unknown>, labelsPerClass: number): void {
  t.like(report, { layer: 'output', labelsPerClass });
  const protocols = report.protocols as Record<string, Record<string, number>>;
  t.deepEqual(Object.keys(protocols).sort(), ['fewLabel', 'fineTune', 'knn', 'linear']);
  for (const name of ['linear', 'fewLabel', 'knn'])
    t.deepEqual(Object.keys(protocols[name]!).sort(), ['pretrained', 'randomInit', 'supervised'], name);
  t.deepEqual(Object.keys(protocols.fineTune!).sort(), ['pretrained', 'randomInit']);
  const accuracies = numbersIn({ protocols, fewLabelSpread: report.fewLabelSpread });
  t.is(accuracies.length, 14);
  for (const [path, value] of accuracies)
    t.true(Number.isFinite(value) && value >= 0 && value <= 1, `${path} ${value}`);
}

const QUICK = ['--epochs', '1', '--few-label-steps', '3', '--labels-per-class', '4'];

test('evaluate on IDX pairs prints the protocols as JSON, every accuracy finite in [0, 1], and writes it', async (t) => {
  const train = await writeIdxPair('eval-train', 48);
  const held = await writeIdxPair('eval-test', 20, 1000);
  const model = await pretrainedTiny();
  const out = join(dir, 'evaluation-idx.json');
  const result = await cli([
    '--backend',
    'wasm',
    'evaluate',
    '--model',
    model,
    '--train',
    train.join(','),
    '--test',
    held.join(','),
    ...QUICK,
    '--json',
    '--out',
    out,
  ]);
  t.is(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  assertEvaluation(t, report, 4);
  t.like(report, { trainCount: 48, testCount: 20, classes: 2 });
  t.deepEqual(JSON.parse(await readFile(out, 'utf8')), report);
});

test('evaluate on a video label CSV splits by clip and writes evaluation.json into the run folder', async (t) => {
  const { labelsFile } = await generateLabelledClips({
    dir: join(dir, 'eval-clips'),
    seed: 5,
    count: 6,
    classes: 2,
    width: 32,
    height: 32,
    frames: 12,
  });
  const model = await pretrainedTiny();
  const result = await cli(['--backend', 'wasm', 'evaluate', '--model', model, '--train', labelsFile, ...QUICK]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /weighted kNN \(cosine, k=20, T=0\.07\)/);
  const report = JSON.parse(await readFile(join(model, 'evaluation.json'), 'utf8'));
  assertEvaluation(t, report, 4);
  // 6 clips of 12 frames, every 4th frame: 3 frames a clip; a third of each class's 3 clips held out.
  t.like(report, { trainCount: 12, testCount: 6 });
});

test('evaluate names the flag when a labelled set is neither a CSV nor an IDX pair', async (t) => {
  const result = await cli(['evaluate', '--model', dir, '--train', join(dir, 'nope.gz,other.gz')]);
  t.is(result.code, 1);
  t.regex(
    result.stderr,
    /--train must be a video label CSV file, or IDX images and labels written images\.gz,labels\.gz/,
  );
});
