// issue 12: S4L (`--labels --labelled-fraction --tasks supervised,rotation`, `classify`), few-shot training on base
// classes (`--classes`, `few-shot`), and `evaluate --layer name:pool | best`, end to end through the CLI.
import test from 'ava';
import { longSerial } from '../_long.ts';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../core/rng.ts';
import { runCli } from './_runCli.ts';

const cli = (args: string[]) => runCli(args, 'wasm');
const tiny = ['--steps', '3', '--batch', '4', '--width', '16', '--height', '16', '--gray', '--feature-size', '8'];
/** Our one-line errors and commander's (a flag's value refused by its parser). */
const own = (stderr: string) =>
  stderr.split('\n').filter((line) => line.startsWith('tempo-ssl:') || line.startsWith('error:'));

let dir = '';
let images = '';
let labels = '';

/**
 * `count` gray 16x16 images in an IDX file, class 0-3 the quadrant of a bright square (jittered by up to 2 pixels)
 * over dim noise, and their IDX labels (shuffled when `shuffle`): `[images, labels]` paths.
 */
async function writeSet(name: string, count: number, seed: number, shuffle = false): Promise<[string, string]> {
  const rng = new Rng(seed);
  const pixels = Buffer.alloc(count * 256);
  const classes = Buffer.alloc(count);
  for (let i = 0; i < count; i++) {
    const label = i % 4;
    classes[i] = label;
    for (let p = 0; p < 256; p++) pixels[i * 256 + p] = rng.int(60);
    const [top, left] = [(label >> 1) * 8 + 1 + rng.int(3), (label & 1) * 8 + 1 + rng.int(3)];
    for (let y = top; y < top + 4; y++) for (let x = left; x < left + 4; x++) pixels[i * 256 + y * 16 + x] = 255;
  }
  if (shuffle) Buffer.from(rng.shuffle([...classes])).copy(classes);
  const header = (dims: number[]) => {
    const h = Buffer.alloc(4 + 4 * dims.length);
    h.writeUInt32BE(0x800 + dims.length, 0);
    dims.forEach((d, k) => h.writeUInt32BE(d, 4 + 4 * k));
    return h;
  };
  const paths: [string, string] = [join(dir, `${name}-images.idx`), join(dir, `${name}-labels.idx`)];
  await writeFile(paths[0], Buffer.concat([header([count, 16, 16]), pixels]));
  await writeFile(paths[1], Buffer.concat([header([count]), classes]));
  return paths;
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'task-related-'));
  [images, labels] = await writeSet('train', 80, 1);
});

test.serial(
  'S4L: supervised on the labelled fraction beside rotation on every image, scored by classify',
  async (t) => {
    const out = join(dir, 's4l');
    const args = ['--images', images, '--labels', labels, '--labelled-fraction', '0.25', ...tiny, '--json'];
    const result = await cli(['pretrain', ...args, '--tasks', 'supervised,rotation', '--out', out]);
    t.is(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as { steps: number; images: number; last: { tasks: object } };
    t.like(summary, { steps: 3, images: 80 });
    t.deepEqual(Object.keys(summary.last.tasks), ['supervised', 'rotation']);
    t.true(existsSync(join(out, 'heads', 'supervised', 'model.json')));
    const info = JSON.parse(await readFile(join(out, 'run.json'), 'utf8')) as Record<string, unknown>;
    t.like(info, { labels: { labelledFraction: 0.25, labelled: 20, classCount: 4 } });
    const scored = await cli(['classify', '--model', out, '--test', `${images},${labels}`, '--json']);
    t.is(scored.code, 0, scored.stderr);
    const report = JSON.parse(scored.stdout) as { accuracy: number; majority: number; testCount: number };
    t.like(report, { majority: 0.25, testCount: 80 });
    t.true(report.accuracy >= 0 && report.accuracy <= 1);
  },
);

test.serial('few-shot: supervised and rotation on base classes, episodes on the novel ones', async (t) => {
  const out = join(dir, 'fs');
  const result = await cli([
    'pretrain',
    '--images',
    images,
    '--labels',
    labels,
    '--classes',
    '0-1',
    '--tasks',
    'supervised,rotation',
    '--out',
    out,
    '--json',
    ...tiny,
  ]);
  t.is(result.code, 0, result.stderr);
  t.like(JSON.parse(result.stdout), { images: 40 });
  const episodes = await cli([
    'few-shot',
    '--model',
    out,
    '--test',
    `${images},${labels}`,
    '--classes',
    '2-3',
    '--ways',
    '2',
    '--shots',
    '1,5',
    '--episodes',
    '10',
    '--json',
  ]);
  t.is(episodes.code, 0, episodes.stderr);
  const report = JSON.parse(episodes.stdout) as { classes: number[]; results: { shots: number; chance: number }[] };
  t.deepEqual(report.classes, [2, 3]);
  t.deepEqual(
    report.results.map((r) => [r.shots, r.chance]),
    [
      [1, 0.5],
      [5, 0.5],
    ],
  );
});

test.serial('evaluate --layer best names the block it chose; name:pool reads a pooled block', async (t) => {
  const out = join(dir, 'rot');
  t.is((await cli(['pretrain', '--images', images, '--out', out, ...tiny])).code, 0);
  const evaluate = (layer: string) =>
    cli([
      'evaluate',
      '--model',
      out,
      '--train',
      `${images},${labels}`,
      '--layer',
      layer,
      '--labels-per-class',
      '2',
      '--epochs',
      '1',
      '--few-label-steps',
      '2',
      '--json',
    ]);
  const best = await evaluate('best');
  t.is(best.code, 0, best.stderr);
  const report = JSON.parse(best.stdout) as { layer: string; layerChoice: { scores: Record<string, number> } };
  t.deepEqual(Object.keys(report.layerChoice.scores), [
    'relu0:pool',
    'relu0',
    'relu1:pool',
    'relu1',
    'relu2:pool',
    'relu2',
    'output',
  ]);
  t.true(report.layer in report.layerChoice.scores);
  const pooled = await evaluate('relu1:pool');
  t.is(pooled.code, 0, pooled.stderr);
  t.like(JSON.parse(pooled.stdout), { layer: 'relu1:pool' });
});

/** S4L through the CLI: `classify` accuracy on 80 unseen images of a run on half the labels of 80 images. */
async function s4lHeldOut(shuffle: boolean): Promise<number> {
  const name = shuffle ? 'shuffled' : 'true';
  const [, trainLabels] = await writeSet(`learn-${name}`, 80, 1, shuffle);
  const [heldImages, heldLabels] = await writeSet('held', 80, 2);
  const out = join(dir, `learn-${name}`);
  const flags = ['--labelled-fraction', '0.5', '--tasks', 'supervised,rotation', '--out', out, ...tiny];
  const run = await cli([
    'pretrain',
    '--images',
    images,
    '--labels',
    trainLabels,
    ...flags,
    '--steps',
    '80',
    '--lr',
    '3e-3',
  ]);
  if (run.code !== 0) throw new Error(run.stderr);
  const scored = await cli(['classify', '--model', out, '--test', `${heldImages},${heldLabels}`, '--json']);
  return (JSON.parse(scored.stdout) as { accuracy: number }).accuracy;
}

longSerial(
  'learning test: S4L on half the labels classifies unseen images; with shuffled labels it cannot',
  async (t) => {
    const learned = await s4lHeldOut(false);
    const broken = await s4lHeldOut(true);
    t.log(`held-out accuracy ${learned.toFixed(3)}, shuffled labels ${broken.toFixed(3)} (chance 0.25)`);
    // Baseline: chance 0.25 (the majority class too); margin 0.5. The broken control must stay within 0.2 of chance.
    t.true(learned >= 0.75, `held-out ${learned}`);
    t.true(broken < 0.45, `shuffled labels ${broken}`);
  },
);

const badFlags: [string, string[], RegExp][] = [
  [
    'supervised without labels',
    ['--tasks', 'supervised'],
    /--labels is missing: give a label for every image \(for --tasks supervised\)/,
  ],
  [
    'a fraction above 1',
    ['--labels', 'L', '--labelled-fraction', '1.5'],
    /labelled-fraction.*expected a share in \(0, 1\]/,
  ],
  ['a bad class list', ['--labels', 'L', '--classes', '5-2'], /--classes must be class indices and ranges/],
  [
    'labels without a task that reads them',
    ['--labels', 'L'],
    /--labels must be used with a task that learns from labels/,
  ],
  ['labels of another length', ['--labels', 'SHORT', '--tasks', 'supervised'], /one per image of --images/],
];

for (const [title, flags, expected] of badFlags) {
  test.serial(`pretrain refuses ${title} with one line`, async (t) => {
    const short = join(dir, 'short.idx');
    await writeFile(short, Buffer.from([0, 0, 8, 1, 0, 0, 0, 1, 0]));
    const args = flags.map((f) => (f === 'L' ? labels : f === 'SHORT' ? short : f));
    const result = await cli(['pretrain', '--images', images, ...args, '--out', join(dir, `bad-${title}`), ...tiny]);
    t.is(result.code, 1);
    const lines = own(result.stderr);
    t.is(lines.length, 1, result.stderr);
    t.regex(lines[0]!, expected);
  });
}

test.serial('classify, few-shot and evaluate refuse bad flags with one line', async (t) => {
  const cases: [string[], RegExp][] = [
    [['classify', '--model', join(dir, 'nowhere'), '--test', `${images},${labels}`], /no heads\/supervised\//],
    [
      ['few-shot', '--model', join(dir, 's4l'), '--test', `${images},${labels}`, '--layer', 'best'],
      /--layer must be a fixed layer/,
    ],
    [
      ['few-shot', '--model', join(dir, 's4l'), '--test', `${images},${labels}`, '--ways', '9'],
      /--ways must be at most 4/,
    ],
    [
      ['evaluate', '--model', join(dir, 's4l'), '--train', `${images},${labels}`, '--layer', 'features:pool'],
      /--layer must be ':pool' on a layer with a feature map/,
    ],
  ];
  for (const [args, expected] of cases) {
    const result = await cli(args);
    t.is(result.code, 1, args.join(' '));
    const lines = own(result.stderr);
    t.is(lines.length, 1, result.stderr);
    t.regex(lines[0]!, expected);
  }
});
