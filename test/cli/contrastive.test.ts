// issue 13: the contrastive tasks through the CLI, on still images and on video frames beside a temporal task.
import test from 'ava';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { generateLabelledClips } from '../../fixtures/syntheticVideos.ts';
import { runCli } from './_runCli.ts';

const cli = (args: string[]) => runCli(args, 'wasm');
const tiny = ['--steps', '3', '--batch', '4', '--width', '16', '--height', '16', '--feature-size', '8'];

let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-cli-contrastive-'));
  await mkdir(join(dir, 'images'));
  for (let i = 0; i < 10; i++) {
    const data = Buffer.alloc(20 * 20 * 3);
    for (let p = 0; p < 20 * 20; p++) data.set([(p * 7 + 40 * i) % 256, (p * 3) % 256, 25 * i], p * 3);
    await sharp(data, { raw: { width: 20, height: 20, channels: 3 } })
      .png()
      .toFile(join(dir, 'images', `${i}.png`));
  }
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

for (const task of ['simclr', 'moco']) {
  test(`pretrain --images trains ${task}, and --resume continues its run`, async (t) => {
    const out = join(dir, task);
    const first = await cli([
      'pretrain',
      '--images',
      join(dir, 'images'),
      '--tasks',
      task,
      '--out',
      out,
      '--json',
      ...tiny,
    ]);
    t.is(first.code, 0, first.stderr);
    t.like(JSON.parse(first.stdout), { steps: 3, images: 10 });
    const metrics = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    t.is(metrics.length, 3);
    t.true(metrics.every((line) => Number.isFinite((JSON.parse(line) as { loss: number }).loss)));
    if (task === 'moco') t.true((await readdir(join(out, 'checkpoint', 'states'))).some((f) => f.startsWith('moco')));
    const more = await cli([
      'pretrain',
      '--images',
      join(dir, 'images'),
      '--tasks',
      task,
      '--out',
      out,
      '--json',
      '--resume',
      ...tiny.map((a) => (a === '3' ? '5' : a)),
    ]);
    t.is(more.code, 0, more.stderr);
    t.like(JSON.parse(more.stdout), { steps: 5 });
  });
}

test('simclr and moco run on video frames beside order', async (t) => {
  const { clips } = await generateLabelledClips({ dir: join(dir, 'clips'), seed: 3, count: 2, width: 16, height: 16 });
  const result = await cli([
    'pretrain',
    '--video',
    ...clips.map((c) => c.path),
    '--tasks',
    'simclr,moco,order',
    '--out',
    join(dir, 'video'),
    '--json',
    ...tiny,
  ]);
  t.is(result.code, 0, result.stderr);
  t.like(JSON.parse(result.stdout), { steps: 3 });
});

test('pretrain takes LARS, a warm-up and cosine schedule and a kNN monitor, and logs lr and knnAccuracy', async (t) => {
  // A labelled folder for the monitor: two classes of 8 images, reddish and bluish.
  const labelled = join(dir, 'labelled');
  for (const [k, name] of ['red', 'blue'].entries()) {
    await mkdir(join(labelled, name), { recursive: true });
    for (let i = 0; i < 8; i++) {
      const data = Buffer.alloc(16 * 16 * 3);
      for (let p = 0; p < 16 * 16; p++) data.set(k === 0 ? [200, 20 * i, 30] : [30, 20 * i, 200], p * 3);
      await sharp(data, { raw: { width: 16, height: 16, channels: 3 } })
        .png()
        .toFile(join(labelled, name, `${i}.png`));
    }
  }
  const out = join(dir, 'lars');
  const run = await cli([
    'pretrain',
    '--images',
    join(dir, 'images'),
    '--tasks',
    'moco',
    '--optimizer',
    'lars',
    '--lr-schedule',
    'cosine',
    '--warmup-steps',
    '2',
    '--momentum-schedule',
    'cosine',
    '--monitor',
    labelled,
    '--monitor-every',
    '2',
    '--out',
    out,
    '--json',
    ...tiny.map((a) => (a === '3' ? '4' : a)),
  ]);
  t.is(run.code, 0, run.stderr);
  const lines = (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { step: number; lr: number; knnAccuracy?: number });
  // LARS's default rate for batch 4: 0.3 x 4 / 256; warm-up over 2 steps, then half a cosine to 0 at step 4.
  const base = (0.3 * 4) / 256;
  const expected = [base / 2, base, base / 2, 0];
  lines.forEach((line, i) => t.true(Math.abs(line.lr - expected[i]!) < 1e-9, `step ${line.step} lr ${line.lr}`));
  t.deepEqual(
    lines.filter((line) => line.knnAccuracy !== undefined).map((line) => line.step),
    [2, 4],
  );
  // The colour decides the class: even a random encoder's kNN reads it.
  t.true(lines.at(-1)!.knnAccuracy! > 0.7, `knn ${lines.at(-1)!.knnAccuracy}`);

  const bad = await cli(['pretrain', '--images', join(dir, 'images'), '--lr-schedule', 'linear', '--out', out]);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /--lr-schedule.*constant or cosine/);
  await writeFile(join(dir, 'corpus.txt'), 'A sentence here. Another one there.\n');
  const text = await cli(['pretrain', '--text', join(dir, 'corpus.txt'), '--monitor', labelled, '--out', out]);
  t.not(text.code, 0);
  t.regex(text.stderr, /--monitor.*left out with text runs/);
});
