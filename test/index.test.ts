import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, count } from 'rxjs';
import { generateVideo } from '../fixtures/syntheticVideos.ts';
import { decodeFrames, parseTaskList, pretrainVideo, selectBackend, TASKS } from '../index.ts';

// The README's library example, run as written (with a generated clip and fewer steps).
test('the README library example runs', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-index-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const clip = (await generateVideo({ seed: 3, path: join(dir, 'clip.mp4'), width: 32, height: 32, frames: 24 })).path;

  await selectBackend({ backend: 'wasm', log: () => {} });
  const frames$ = decodeFrames(clip, { width: 32, height: 32, fps: 12 });
  t.is(await lastValueFrom(frames$.pipe(count())), 24);
  const run = await pretrainVideo({
    videos: [clip],
    tasks: parseTaskList('order'),
    steps: 3,
    batchSize: 4,
    format: { width: 32, height: 32 },
    outDir: join(dir, 'run'),
  });
  t.is(run.steps, 3);
  t.true('order' in TASKS && 'dialogue-order' in TASKS);
});
