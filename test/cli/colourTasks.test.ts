// issue 12: colorization and split-brain train through `pretrain --video` on colour frames, beside a temporal task.
import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateLabelledClips } from '../../fixtures/syntheticVideos.ts';
import { runCli } from './_runCli.ts';

const cli = (args: string[]) => runCli(args, 'wasm');
const tiny = ['--steps', '2', '--batch', '2', '--width', '32', '--height', '32', '--feature-size', '8'];

let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-colour-tasks-'));
  await generateLabelledClips({ dir: join(dir, 'clips'), seed: 4, count: 2, width: 32, height: 32, frames: 24 });
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

test('colorization, split-brain and order train together on colour video frames', async (t) => {
  const out = join(dir, 'run');
  const result = await cli([
    'pretrain',
    '--video',
    join(dir, 'clips'),
    '--tasks',
    'colorization,split-brain,order',
    '--out',
    out,
    '--json',
    ...tiny,
  ]);
  t.is(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as { steps: number };
  t.is(summary.steps, 2);
  t.true(existsSync(join(out, 'checkpoint', 'heads', 'colorization', 'model.json')));
  t.true(existsSync(join(out, 'checkpoint', 'parts', 'split-brain', 'ab_encoder', 'model.json')));
});

test('gray frames are refused up front with one line naming --gray', async (t) => {
  const result = await cli([
    'pretrain',
    '--video',
    join(dir, 'clips'),
    '--tasks',
    'colorization',
    '--gray',
    '--out',
    join(dir, 'gray'),
    ...tiny,
  ]);
  t.is(result.code, 1);
  const own = result.stderr.split('\n').filter((line) => line.startsWith('tempo-ssl:'));
  t.is(own.length, 1, result.stderr);
  t.regex(own[0]!, /--gray/);
});
