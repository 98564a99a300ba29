// issue 13: instance-disc, cmc, cmc-views, simclr-video and moco-video through the CLI, and the one-line refusals
// where a method does not apply (gray pictures for cmc, one camera for cmc-views, still images for the video pairs).
import test from 'ava';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { generateSyncedViews, type SyncedViewGroup } from '../../fixtures/syncedViews.ts';
import { generateLabelledClips } from '../../fixtures/syntheticVideos.ts';
import { runCli } from './_runCli.ts';

const cli = (args: string[]) => runCli(args, 'wasm');
const tiny = ['--steps', '3', '--batch', '4', '--width', '16', '--height', '16', '--feature-size', '8'];

let dir = '';
let groups: SyncedViewGroup[] = [];
let clips: string[] = [];
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-cli-contrastive-family-'));
  await mkdir(join(dir, 'images'));
  for (let i = 0; i < 10; i++) {
    const data = Buffer.alloc(20 * 20 * 3);
    for (let p = 0; p < 20 * 20; p++) data.set([(p * 7 + 40 * i) % 256, (p * 3) % 256, 25 * i], p * 3);
    await sharp(data, { raw: { width: 20, height: 20, channels: 3 } })
      .png()
      .toFile(join(dir, 'images', `${i}.png`));
  }
  ({ groups } = await generateSyncedViews({ dir: join(dir, 'views'), seed: 3, recordings: 1, frames: 24 }));
  clips = (
    await generateLabelledClips({ dir: join(dir, 'clips'), seed: 3, count: 2, width: 16, height: 16 })
  ).clips.map((c) => c.path);
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

/** The one line an error prints, with the exit code checked. */
function oneLine(t: { is: (a: unknown, b: unknown, m?: string) => void }, result: { code: number; stderr: string }) {
  t.is(result.code, 1, result.stderr);
  const lines = result.stderr.split('\n').filter((l) => l.startsWith('tempo-ssl: '));
  t.is(lines.length, 1, result.stderr);
  return lines[0] ?? '';
}

for (const task of ['instance-disc', 'cmc']) {
  test(`pretrain --images trains ${task} with its memory bank checkpointed, and --resume continues`, async (t) => {
    const out = join(dir, task);
    const args = ['pretrain', '--images', join(dir, 'images'), '--tasks', task, '--out', out, '--json'];
    const first = await cli([...args, ...tiny]);
    t.is(first.code, 0, first.stderr);
    t.like(JSON.parse(first.stdout), { steps: 3, images: 10 });
    t.true((await readdir(join(out, 'checkpoint', 'states'))).some((f) => f.startsWith(task)));
    const more = await cli([...args, '--resume', ...tiny.map((a) => (a === '3' ? '5' : a))]);
    t.is(more.code, 0, more.stderr);
    t.like(JSON.parse(more.stdout), { steps: 5 });
  });
}

test('cmc on --gray pictures fails with one line saying it does not apply', async (t) => {
  const out = ['--out', join(dir, 'cmc-gray')];
  const result = await cli(['pretrain', '--images', join(dir, 'images'), '--tasks', 'cmc', '--gray', ...out, ...tiny]);
  t.regex(oneLine(t, result), /--gray .*not applicable to gray data/);
});

test('instance-disc, cmc, simclr-video and moco-video train on video frames', async (t) => {
  const result = await cli([
    'pretrain',
    '--video',
    ...clips,
    '--tasks',
    'instance-disc,cmc,simclr-video,moco-video',
    '--out',
    join(dir, 'video'),
    '--json',
    ...tiny,
  ]);
  t.is(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout);
  t.is(summary.steps, 3);
  for (const name of ['instance-disc', 'cmc', 'simclr-video', 'moco-video'])
    t.true(Number.isFinite(summary.last.tasks[name].loss), name);
});

test('cmc-views trains on synchronized cameras; on plain --video it fails with one line naming --views', async (t) => {
  const out = (name: string) => ['--out', join(dir, name)];
  const views = await cli([
    'pretrain',
    '--views',
    groups[0]!.files.join(','),
    '--tasks',
    'cmc-views',
    '--json',
    ...out('cmc-views'),
    ...tiny,
  ]);
  t.is(views.code, 0, views.stderr);
  t.true(Number.isFinite(JSON.parse(views.stdout).last.tasks['cmc-views'].loss));
  const single = await cli(['pretrain', '--video', clips[0]!, '--tasks', 'cmc-views', ...out('cmc-one'), ...tiny]);
  t.regex(oneLine(t, single), /--views/);
});

test('simclr-video on --images fails with one line: it needs time', async (t) => {
  const out = ['--out', join(dir, 'simclr-images')];
  const result = await cli(['pretrain', '--images', join(dir, 'images'), '--tasks', 'simclr-video', ...out, ...tiny]);
  t.regex(oneLine(t, result), /simclr-video reads consecutive video frames/);
});
