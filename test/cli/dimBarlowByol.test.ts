// issue 13: dim, dim-infonce, barlow-twins and byol through the CLI, on still images and on video frames, each
// logging the collapse signal embeddingStd.
import test from 'ava';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { generateLabelledClips } from '../../fixtures/syntheticVideos.ts';
import { runCli } from './_runCli.ts';

const cli = (args: string[]) => runCli(args, 'wasm');
const tiny = ['--steps', '3', '--batch', '4', '--width', '16', '--height', '16', '--feature-size', '8'];

let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-cli-noncontrastive-'));
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

for (const task of ['dim', 'dim-infonce', 'barlow-twins', 'byol']) {
  test(`pretrain --images trains ${task} and logs embeddingStd, and --resume continues its run`, async (t) => {
    const out = join(dir, task);
    const args = ['pretrain', '--images', join(dir, 'images'), '--tasks', task, '--out', out, '--json'];
    const first = await cli([...args, ...tiny]);
    t.is(first.code, 0, first.stderr);
    t.like(JSON.parse(first.stdout), { steps: 3, images: 10 });
    const metrics = (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { loss: number; tasks: Record<string, { embeddingStd: number }> });
    t.is(metrics.length, 3);
    t.true(metrics.every((m) => Number.isFinite(m.loss) && m.tasks[task]!.embeddingStd > 0));
    if (task === 'byol') t.true((await readdir(join(out, 'checkpoint', 'states'))).some((f) => f.startsWith('byol')));
    const more = await cli([...args, '--resume', ...tiny.map((a) => (a === '3' ? '5' : a))]);
    t.is(more.code, 0, more.stderr);
    t.like(JSON.parse(more.stdout), { steps: 5 });
  });
}

test('dim, dim-infonce, barlow-twins and byol run on video frames beside order', async (t) => {
  const { clips } = await generateLabelledClips({ dir: join(dir, 'clips'), seed: 3, count: 2, width: 16, height: 16 });
  const result = await cli([
    'pretrain',
    '--video',
    ...clips.map((c) => c.path),
    '--tasks',
    'dim,dim-infonce,barlow-twins,byol,order',
    '--out',
    join(dir, 'video'),
    '--json',
    ...tiny,
  ]);
  t.is(result.code, 0, result.stderr);
  t.like(JSON.parse(result.stdout), { steps: 3 });
});
