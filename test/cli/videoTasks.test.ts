// issue 9: every video task trains through `pretrain`, and one that cannot sample its inputs fails with a named error.
import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateLabelledClips } from '../../fixtures/syntheticVideos.ts';
import { runCli } from './_runCli.ts';

const cli = (args: string[]) => runCli(args, 'wasm');
const tiny = ['--steps', '2', '--batch', '2', '--width', '24', '--height', '24', '--feature-size', '8'];

let dir = '';
let clips: string[] = [];
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-video-tasks-'));
  const set = await generateLabelledClips({
    dir: join(dir, 'clips'),
    seed: 3,
    count: 3,
    width: 24,
    height: 24,
    frames: 40,
  });
  clips = set.clips.map((c) => c.path);
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

test('tracking, order and frame-sim train together on three videos through pretrain', async (t) => {
  const out = join(dir, 'three');
  const result = await cli([
    'pretrain',
    '--video',
    join(dir, 'clips'),
    '--tasks',
    'tracking,order,frame-sim',
    '--out',
    out,
    '--json',
    ...tiny,
  ]);
  t.is(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as { steps: number; stoppedBy: string };
  t.like(summary, { steps: 2, stoppedBy: 'steps' });
});

test('tracking on one video exits 1 with an error naming the task, the video and the fix, and leaves no run folder', async (t) => {
  const out = join(dir, 'one');
  const result = await cli(['pretrain', '--video', clips[0]!, '--tasks', 'tracking', '--out', out, ...tiny]);
  t.is(result.code, 1, result.stderr);
  const own = result.stderr.split('\n').filter((line) => line.startsWith('tempo-ssl:'));
  t.deepEqual(own, [
    `tempo-ssl: tracking needs at least 2 videos (its negatives are patches of other videos): got 1 (${clips[0]}); give --video more files`,
  ]);
  t.false(existsSync(out));
});
