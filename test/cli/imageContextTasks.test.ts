// issue 12: autoencoder, inpainting, relative-position and jigsaw train through `pretrain` on images and on video
// frames beside a temporal task, and resume exactly.
import test from 'ava';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { generateLabelledClips } from '../../fixtures/syntheticVideos.ts';
import { runCli } from './_runCli.ts';

const cli = (args: string[]) => runCli(args, 'wasm');
const tiny = ['--steps', '2', '--batch', '2', '--width', '24', '--height', '24', '--feature-size', '8'];
const TASKS = ['autoencoder', 'inpainting', 'relative-position', 'jigsaw'];

let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-cli-image-context-'));
  await mkdir(join(dir, 'images'));
  for (let i = 0; i < 6; i++) {
    const data = Buffer.alloc(30 * 30 * 3);
    for (let p = 0; p < 30 * 30; p++) data.fill((p * (i + 3)) % 256, p * 3, p * 3 + 3);
    await sharp(data, { raw: { width: 30, height: 30, channels: 3 } })
      .png()
      .toFile(join(dir, 'images', `${i}.png`));
  }
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

test('the four image-context tasks train together on gray images through pretrain --images', async (t) => {
  const result = await cli([
    'pretrain',
    '--images',
    join(dir, 'images'),
    '--gray',
    '--tasks',
    TASKS.join(','),
    '--out',
    join(dir, 'images-run'),
    '--json',
    ...tiny,
  ]);
  t.is(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as { steps: number; last: { tasks: Record<string, unknown> } };
  t.is(summary.steps, 2);
  t.deepEqual(Object.keys(summary.last.tasks).sort(), [...TASKS].sort());
});

test('the four train beside order on colour video frames (--video ... --tasks jigsaw,...,order)', async (t) => {
  await generateLabelledClips({ dir: join(dir, 'clips'), seed: 3, count: 2, width: 24, height: 24, frames: 30 });
  const result = await cli([
    'pretrain',
    '--video',
    join(dir, 'clips'),
    '--tasks',
    'jigsaw,inpainting,relative-position,autoencoder,order',
    '--out',
    join(dir, 'video-run'),
    '--json',
    ...tiny,
  ]);
  t.is(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as { steps: number; last: { tasks: Record<string, unknown> } };
  t.is(summary.steps, 2);
  t.deepEqual(Object.keys(summary.last.tasks).sort(), [...TASKS, 'order'].sort());
});

test('a resumed run of the four tasks ends with the loss of an uninterrupted one', async (t) => {
  const args = ['--images', join(dir, 'images'), '--tasks', TASKS.join(','), '--checkpoint-every', '2', '--json'];
  const run = (steps: string, out: string, ...more: string[]) =>
    cli(['pretrain', ...args, ...tiny, '--steps', steps, '--out', join(dir, out), ...more]);
  const straight = await run('4', 'straight');
  t.is(straight.code, 0, straight.stderr);
  t.is((await run('2', 'resumed')).code, 0);
  const resumed = await run('4', 'resumed', '--resume');
  t.is(resumed.code, 0, resumed.stderr);
  const loss = (stdout: string) => (JSON.parse(stdout) as { last: { loss: number } }).last.loss;
  t.like(JSON.parse(resumed.stdout), { steps: 4, startStep: 2 });
  // Equal but for float rounding (a restored optimizer adds in another order), as the trainer's resume test allows.
  t.true(
    Math.abs(loss(resumed.stdout) - loss(straight.stdout)) < 1e-4,
    `${loss(resumed.stdout)} vs ${loss(straight.stdout)}`,
  );
});
