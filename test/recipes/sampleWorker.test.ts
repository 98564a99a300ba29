// issue 11: samples made on a worker thread are the training thread's samples, with backpressure and errors intact.
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom, toArray } from 'rxjs';
import { TaskSamplesError, VideoError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';
import { Valve } from '../../core/valve.ts';
import { generateLabelledClips } from '../../fixtures/syntheticVideos.ts';
import { FrameCache } from '../../pipeline/frameCache.ts';
import { SAMPLE_CREDITS, SampleWorker, type SampleWorkerSpec } from '../../recipes/sampleWorker.ts';
import { videoSamples } from '../../recipes/videoSamples.ts';
import { taskReading } from '../../tasks/registry.ts';

const format = { width: 24, height: 24 };
let dir = '';
let videos: string[] = [];
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-sample-worker-'));
  const { clips } = await generateLabelledClips({
    dir: join(dir, 'clips'),
    seed: 5,
    count: 3,
    width: 24,
    height: 24,
    frames: 24,
  });
  videos = clips.map((c) => c.path);
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

const spec = (overrides: Partial<SampleWorkerSpec> = {}): SampleWorkerSpec => ({
  task: 'order',
  videos,
  format,
  batchSize: 4,
  frameCacheBytes: 1 << 24,
  ...overrides,
});

test.serial('a worker gives the samples of the training thread, in order, for two epochs', async (t) => {
  const worker = new SampleWorker(spec());
  const onThread = videoSamples(taskReading('order', 'frames').configure({ itemShape: [24, 24, 3] }), videos, format, {
    batchSize: 4,
    frameCache: new FrameCache(1 << 24),
  });
  try {
    for (const epoch of [0, 1]) {
      const seed = 100 + epoch;
      const there = await firstValueFrom(worker.samples(epoch, new Valve(), new Rng(seed)).pipe(toArray()));
      const here = await firstValueFrom(onThread(epoch, new Valve(), new Rng(seed)).pipe(toArray()));
      t.true(here.length > 8, `${here.length} samples`);
      t.is(there.length, here.length);
      t.deepEqual(
        there.map((s) => [s.source, Array.from(s.label), s.inputs.map((x) => Array.from(x.subarray(0, 16)))]),
        here.map((s) => [s.source, Array.from(s.label), s.inputs.map((x) => Array.from(x.subarray(0, 16)))]),
      );
    }
  } finally {
    await worker.close();
  }
});

test.serial('a closed valve pauses the worker: samples stop arriving until it opens', async (t) => {
  const worker = new SampleWorker(spec({ batchSize: 2 }));
  const valve = new Valve();
  let received = 0;
  let closed = (): void => {};
  const closing = new Promise<void>((resolve) => (closed = resolve));
  const done = new Promise<void>((resolve, reject) => {
    worker.samples(0, valve, new Rng(1)).subscribe({
      next: () => {
        received++;
        if (received === 2) {
          valve.close();
          closed();
        }
      },
      complete: resolve,
      error: reject,
    });
  });
  try {
    // Timed from the close, not from the start: a loaded machine takes over a second to start the thread.
    await closing;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // The valve closed at the first message (2 samples); the worker then had at most SAMPLE_CREDITS messages of 2.
    t.true(received <= 2 + 2 * SAMPLE_CREDITS, `${received} samples arrived while the valve was closed`);
    const whilePaused = received;
    await new Promise((resolve) => setTimeout(resolve, 500));
    t.is(received, whilePaused, 'none came later while it stayed closed');
    valve.open();
    await done;
    t.true(received > whilePaused, `more came once it opened (${whilePaused} before, ${received} in all)`);
  } finally {
    await worker.close();
  }
});

test.serial('errors cross the thread as their own classes', async (t) => {
  // Tracking needs two videos: the worker's sampler refuses one with a TaskSamplesError.
  const worker = new SampleWorker(spec({ task: 'tracking', videos: videos.slice(0, 1) }));
  try {
    const error = await t.throwsAsync(firstValueFrom(worker.samples(0, new Valve(), new Rng(1)).pipe(toArray())));
    t.true(error instanceof TaskSamplesError, `${error?.name}: ${error?.message}`);
    t.regex(error!.message, /tracking/);
  } finally {
    await worker.close();
  }
  const corrupt = join(dir, 'corrupt.mp4');
  await writeFile(corrupt, 'not a video');
  const bad: string[] = [];
  const skipping = new SampleWorker(spec({ videos: [corrupt, ...videos], badInputs: 'skip' }), (input, error) => {
    t.true(error instanceof VideoError);
    bad.push(input);
  });
  try {
    const samples = await firstValueFrom(skipping.samples(0, new Valve(), new Rng(1)).pipe(toArray()));
    t.true(samples.length > 0);
    t.deepEqual(bad, [corrupt]);
  } finally {
    await skipping.close();
  }
});
