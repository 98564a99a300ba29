import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { concat, concatMap, delay, firstValueFrom, from, map, Observable, of, take, toArray } from 'rxjs';
import { generateLabelledClips, generateVideo } from '../../fixtures/syntheticVideos.ts';
import { syntheticFrames } from '../../fixtures/frames.ts';
import { TaskSamplesError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';
import { Valve } from '../../core/valve.ts';
import { roundRobin } from '../../pipeline/interleave.ts';
import { samplePerSource, type SourceFrame, type SourceRun } from '../../pipeline/videoMix.ts';
import { videoSamples } from '../../recipes/videoSamples.ts';
import { labelledFrames } from '../../evaluation/videoLabels.ts';
import { readVideoLabels } from '../../evaluation/videoLabels.ts';
import { sourceId } from '../../tasks/contrastive/tripletTask.ts';
import { orderVerification } from '../../tasks/temporal/orderVerification.ts';
import { trackPatches } from '../../tasks/temporal/trackPatches.ts';
import { freePort, serveTestStream } from './_liveServer.ts';

let dir: string;
let clips: string[];
let positionsFile: string;
let longClips: string[] = [];
const format = { width: 24, height: 24 };

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-dataset-'));
  const set = await generateLabelledClips({ dir, seed: 4, count: 3, width: 24, height: 24, frames: 20 });
  clips = set.clips.map((c) => c.path);
  positionsFile = set.positionsFile;
  const long = await generateLabelledClips({
    dir: join(dir, 'long'),
    seed: 6,
    count: 3,
    width: 24,
    height: 24,
    frames: 48,
  });
  longClips = long.clips.map((c) => c.path);
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

// Regression: mixing the frames of several videos before sampling left the order sampler no window from one video.
test('samples of several videos come from every video and are reproducible', async (t) => {
  const epoch = () =>
    firstValueFrom(videoSamples(orderVerification, clips, format)(0, new Valve(), new Rng(7)).pipe(toArray()));
  const [a, b] = [await epoch(), await epoch()];
  t.true(a.length >= 6, `${a.length} samples`);
  t.is(new Set(a.map((s) => s.source)).size, 3);
  t.deepEqual(
    a.map((s) => [s.source, s.label[0]]),
    b.map((s) => [s.source, s.label[0]]),
  );
});

test('frame-level labels give each decoded frame its own label', async (t) => {
  const { videos } = await readVideoLabels(positionsFile);
  t.true(videos.every((v) => v.frame !== undefined && v.label >= 0 && v.label < 4));
  const data = await labelledFrames(videos, format, 2);
  t.is(data.items.length, 3 * 10);
  t.is(data.items[0]!.length, 24 * 24 * 3);
  t.is(new Set(data.groups).size, 3);
});

// issue 9: a sampler per video, all fed in one seeded order, so samplers may share a store (tracking's bank of
// other videos' patches) and an epoch is the same however fast each decoder runs.
test("samplePerSource gives each run its own instance, in order, and the same output whatever the lanes' timing", async (t) => {
  const frames = syntheticFrames({ clips: 4, seed: 3, frames: 6, width: 16, height: 16 });
  const tagged = (run: SourceRun, k: number): SourceFrame[] => [
    ...frames.slice(k * 6, k * 6 + 6).map((frame) => ({ run, frame })),
    { run },
  ];
  // Two lanes of two runs each, emitted at once or with random delays (a loaded machine).
  const lanes = (jitter?: Rng): Observable<SourceFrame>[] => {
    const runs: SourceRun[] = ['a', 'b', 'c', 'd'].map((input, i) => ({ input, rng: new Rng(i) }));
    return [0, 1].map((lane) => {
      const items = [...tagged(runs[lane]!, lane), ...tagged(runs[lane + 2]!, lane + 2)];
      return jitter ? from(items).pipe(concatMap((item) => of(item).pipe(delay(jitter.int(4))))) : from(items);
    });
  };
  // Each instance records what it sees, and a store all instances share: what it held when each frame came.
  const epoch = (jitter?: Rng) => {
    const shared: string[] = [];
    return firstValueFrom(
      roundRobin(lanes(jitter)).pipe(
        samplePerSource(
          (rng, input) => (source) =>
            concat(
              source.pipe(
                map((frame) => {
                  shared.push(`${input}${frame.index}`);
                  return `${input}${frame.index}:${shared.length}:${rng.int(100)}`;
                }),
              ),
              of(`${input} done`),
            ),
        ),
        toArray(),
      ),
    );
  };
  const calm = await epoch();
  t.is(calm.length, 4 * 7);
  for (const input of ['a', 'b', 'c', 'd']) {
    const own = calm.filter((x) => x.startsWith(input)).map((x) => x.split(':')[0]);
    t.deepEqual(own, [...[0, 1, 2, 3, 4, 5].map((i) => `${input}${i}`), `${input} done`]);
  }
  t.deepEqual(await epoch(new Rng(1)), calm);
  t.deepEqual(await epoch(new Rng(2)), calm);
});

test('samplePerSource passes a sampler error on, and early unsubscription ends every open instance', async (t) => {
  const frames = syntheticFrames({ clips: 2, seed: 3, frames: 4, width: 16, height: 16 });
  const runs: SourceRun[] = ['a', 'b'].map((input, i) => ({ input, rng: new Rng(i) }));
  const items = (): SourceFrame[] => frames.map((frame, i) => ({ run: runs[i % 2]!, frame }));
  const failing = from(items()).pipe(
    samplePerSource((_rng, input) =>
      map((frame) => {
        if (input === 'b' && frame.index === 3) throw new Error('sampler broke on b');
        return input;
      }),
    ),
  );
  await t.throwsAsync(firstValueFrom(failing.pipe(toArray())), { message: 'sampler broke on b' });
  let ended = 0;
  const counted = from(items()).pipe(
    samplePerSource(
      () => (source) =>
        new Observable<string>((subscriber) => {
          const subscription = source.pipe(map((frame) => frame.source)).subscribe(subscriber);
          return () => (ended++, subscription.unsubscribe());
        }),
    ),
  );
  t.deepEqual(await firstValueFrom(counted.pipe(take(3), toArray())), [
    frames[0]!.source,
    frames[1]!.source,
    frames[2]!.source,
  ]);
  t.is(ended, 2, 'both open instances were torn down');
});

// Regression (issue 9): tracking drew no sample through the CLI, since each video's sampler saw no other video.
test('tracking over several videos draws its negatives from the other videos, reproducibly', async (t) => {
  const epoch = () =>
    firstValueFrom(videoSamples(trackPatches, longClips, format)(0, new Valve(), new Rng(3)).pipe(toArray()));
  const [a, b] = [await epoch(), await epoch()];
  t.true(a.length >= 6, `${a.length} samples`);
  t.is(new Set(a.map((s) => s.source)).size, 3);
  for (const s of a) {
    t.is(s.inputs[3]![0], sourceId(s.source!));
    t.true(
      longClips.some((clip) => clip !== s.source && sourceId(clip) === s.inputs[3]![1]),
      'the negative is a patch of another of the inputs',
    );
  }
  t.deepEqual(
    a.map((s) => [s.source, s.inputs[3]![1], s.inputs[0]![100], s.inputs[2]![100]]),
    b.map((s) => [s.source, s.inputs[3]![1], s.inputs[0]![100], s.inputs[2]![100]]),
  );
});

test('a task that cannot sample its inputs fails naming the task, the inputs and what it needs', async (t) => {
  const run = (task: typeof trackPatches, inputs: string[], options = {}) =>
    firstValueFrom(videoSamples(task, inputs, format, options)(0, new Valve(), new Rng(1)).pipe(toArray()));
  await t.throwsAsync(run(trackPatches, [longClips[0]!]), {
    instanceOf: TaskSamplesError,
    message: `tracking needs at least 2 videos (its negatives are patches of other videos): got 1 (${longClips[0]}); give --video more files`,
  });
  const still = join(dir, 'still.mp4');
  await generateVideo({ seed: 1, path: still, width: 24, height: 24, frames: 20, speed: [0, 0] });
  await t.throwsAsync(run(orderVerification, [still]), {
    instanceOf: TaskSamplesError,
    message:
      /^order made no sample in a whole pass over its inputs: no frames formed one \(20 decoded\): got 1 \(.*still\.mp4\); give longer, moving videos/,
  });
  await t.throwsAsync(run(orderVerification, clips, { batchSize: 500 }), {
    instanceOf: TaskSamplesError,
    message:
      /^order made \d+ samples in a whole pass over its inputs \(60 frames decoded\), fewer than one batch of 500: got 3 /,
  });
});

test('on a live input, a task that makes no sample in maxFramesWithoutSample frames fails instead of waiting', async (t) => {
  const port = await freePort();
  const server = serveTestStream(port);
  try {
    const samples = videoSamples(orderVerification, [`tcp://127.0.0.1:${port}`], format, { maxFramesWithoutSample: 5 });
    await t.throwsAsync(firstValueFrom(samples(0, new Valve(), new Rng(1)).pipe(toArray())), {
      instanceOf: TaskSamplesError,
      message: /^order made no sample from 5 frames of its inputs: got 1 \(tcp:/,
    });
  } finally {
    server.kill();
  }
});
