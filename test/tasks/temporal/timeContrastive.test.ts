import test from 'ava';
import type * as tf from '@tensorflow/tfjs';
import { firstValueFrom, from, toArray } from 'rxjs';
import { syncedViewFrames } from '../../../fixtures/syncedViews.ts';
import { selectBackend } from '../../../models/backend.ts';
import { OptionError, VideoError } from '../../../core/errors.ts';
import type { Frame } from '../../../pipeline/frame.ts';
import { crossViewRetrieval } from '../../../evaluation/crossViewRetrieval.ts';
import { alignViews } from '../../../pipeline/multiView.ts';
import { randomInitLike } from '../../../evaluation/evaluate.ts';
import { Rng } from '../../../core/rng.ts';
import { projectFrames } from '../../../tasks/contrastive/tripletTask.ts';
import { sampleTimeContrastive, timeContrastive } from '../../../tasks/temporal/timeContrastive.ts';
import { TASKS, tasksReading } from '../../../tasks/registry.ts';
import type { Sample } from '../../../pipeline/sample.ts';
import { dispose, learn, mean } from '../_learn.ts';

const SIZE = 24;
const FPS = 10;
test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

/** A frame whose first byte is its index and second its camera, so a sample's inputs trace back to their frames. */
function traced(index: number, camera: number, source: string, fps = FPS): Frame {
  const data = new Uint8Array(4 * 4 * 3);
  data[0] = index;
  data[1] = camera;
  return { data, width: 4, height: 4, channels: 3, index, timestamp: index / fps, source };
}
const back = (x: Float32Array) => ({ index: Math.round(x[0]! * 255), camera: Math.round(x[1]! * 255) });
const traceOf = (s: Sample) =>
  s.inputs.map(back) as [ReturnType<typeof back>, ReturnType<typeof back>, ReturnType<typeof back>];
const sampleAll = (items: (Frame | Frame[])[], seed = 1, options = {}) =>
  firstValueFrom(from(items).pipe(sampleTimeContrastive({ rng: new Rng(seed) }, options), toArray()));

test('tcn reads views, and the runs list it among the video tasks', (t) => {
  t.is(TASKS.tcn.reads, 'views');
  t.true(tasksReading('frames', 'views').includes('tcn'));
});

test('multi-view: the positive is another camera at the same moment, the negative the anchor camera beyond the margin', async (t) => {
  const moments = Array.from({ length: 40 }, (_, i) => [0, 1, 2].map((c) => traced(i, c, 'rec')));
  const samples = await sampleAll(moments);
  // 10 fps: a negative must lie more than 0.4 s (4 frames) back, so the first triplet comes at moment 5.
  t.is(samples.length, 35);
  const cameras = new Set<number>();
  for (const s of samples) {
    const [a, p, n] = traceOf(s);
    t.is(a.index, p.index);
    t.not(a.camera, p.camera);
    t.is(n.camera, a.camera);
    t.true(a.index - n.index > 4 && a.index - n.index <= 20, `${a.index} vs ${n.index}`);
    cameras.add(a.camera);
  }
  t.deepEqual([...cameras].sort(), [0, 1, 2]);
});

test('single view: the positive lies within the positive range, the negative beyond the margin range, same video', async (t) => {
  const frames = [
    ...Array.from({ length: 30 }, (_, i) => traced(i, 0, 'a')),
    ...Array.from({ length: 30 }, (_, i) => traced(i, 0, 'b')),
  ];
  const samples = await sampleAll(frames);
  // Per video: from frame 5 on (the margin 0.4 s is 4 frames at 10 fps).
  t.is(samples.length, 50);
  const gaps = new Set<number>();
  for (const s of samples) {
    const [a, p, n] = traceOf(s);
    t.true(a.index - p.index >= 1 && a.index - p.index <= 2, `positive ${p.index} for anchor ${a.index}`);
    t.true(a.index - n.index > 4 && a.index - n.index <= 20, `negative ${n.index} for anchor ${a.index}`);
    gaps.add(a.index - p.index);
  }
  t.deepEqual([...gaps].sort(), [1, 2]);
  // Samples never mix videos: video b's first triplet waits for its own margin.
  t.is(traceOf(samples[25]!)[0].index, 5);
});

test('single view at a low frame rate takes the adjacent frame as positive and negatives beyond it', async (t) => {
  const frames = Array.from({ length: 12 }, (_, i) => traced(i, 0, 'slow', 2));
  const samples = await sampleAll(frames);
  t.is(samples.length, 10);
  for (const s of samples) {
    const [a, p, n] = traceOf(s);
    t.is(a.index - p.index, 1);
    t.true(a.index - n.index >= 2);
  }
});

test('one-camera tuples are single view; the samples are reproducible from the seed', async (t) => {
  const frames = Array.from({ length: 30 }, (_, i) => traced(i, 0, 'a'));
  const single = await sampleAll(frames, 3);
  const tuples = await sampleAll(
    frames.map((f) => [f]),
    3,
  );
  t.deepEqual(tuples, single);
  t.notDeepEqual(await sampleAll(frames, 4), single);
});

test('frames without timestamps fail with the fix, and bad options are refused', async (t) => {
  const frames = [traced(0, 0, 'nofps.ts'), { ...traced(1, 0, 'nofps.ts'), timestamp: Number.NaN }];
  await t.throwsAsync(sampleAll(frames), { instanceOf: VideoError, message: /nofps\.ts.*no timestamp.*--fps/ });
  t.throws(() => sampleTimeContrastive({ rng: new Rng(1) }, { marginRange: 0.1, positiveRange: 0.2 }), {
    instanceOf: OptionError,
    message: /marginRange/,
  });
  t.throws(() => sampleTimeContrastive({ rng: new Rng(1) }, { negativeRange: 0.3 }), {
    instanceOf: OptionError,
    message: /negativeRange/,
  });
  t.throws(() => sampleTimeContrastive({ rng: new Rng(1) }, { memory: 1 }), {
    instanceOf: OptionError,
    message: /memory/,
  });
});

/** Recordings of two synchronized cameras, as moments (`alignViews`), `frames` moments each. */
async function recordings(seeds: number[], frames: number): Promise<Frame[][][]> {
  const out: Frame[][][] = [];
  for (const seed of seeds) {
    const cameras = syncedViewFrames({ seed, cameras: 2, frames, fps: FPS, width: SIZE, height: SIZE });
    out.push(
      await firstValueFrom(
        alignViews(
          cameras.map((c) => from(c)),
          { tolerance: 0.5 / FPS },
        ).pipe(toArray()),
      ),
    );
  }
  return out;
}

/** The broken control's data: every camera-1 frame replaced by camera 1 at a random other moment (> 4 away). */
function breakPositives(train: Frame[][][], rng: Rng): Frame[][][] {
  return train.map((moments) =>
    moments.map((m, i) => {
      const far = moments.filter((_, j) => Math.abs(j - i) > 4);
      return [m[0]!, { ...far[rng.int(far.length)]![1]!, index: m[1]!.index, timestamp: m[1]!.timestamp }];
    }),
  );
}

/** Encoder features (what `evaluate` and `embed` use), beside the TCN embedding of the head. */
const features = (encoder: tf.LayersModel) => (x: tf.Tensor4D) => encoder.apply(x) as tf.Tensor2D;
const crossView = (embed: (x: tf.Tensor4D) => tf.Tensor2D, held: Frame[][][], window: number) =>
  crossViewRetrieval(embed, held, { window });

test.serial(
  'multi-view TCN learns cross-view alignment on held-out recordings and unseen cameras; random positives do not',
  async (t) => {
    // 8 recordings of two cameras x 36 moments to train on; 8 others (new scenes, new camera placements) held out.
    const train = await recordings([1, 2, 3, 4, 5, 6, 7, 8], 36);
    const held = await recordings([101, 102, 103, 104, 105, 106, 107, 108], 36);
    // A hit: the nearest camera-1 frame lies within the positive range (0.2 s = 2 moments at 10 fps).
    const window = 2;
    const run = async (data: Frame[][][]) => {
      const learned = await learn(timeContrastive, data.flat(), SIZE, { steps: 150 });
      const head = learned.result.heads.tcn!;
      const result = {
        embedding: crossView((x) => projectFrames(learned.encoder, head, x), held, window),
        features: crossView(features(learned.encoder), held, window),
        accuracy: mean(learned.accuracies.slice(-30)),
        losses: learned.losses,
      };
      return { ...result, learned };
    };
    const tcn = await run(train);
    const randomEncoder = await randomInitLike(tcn.learned.encoder);
    const randomHead = timeContrastive.build(randomEncoder, new Rng(4)).head;
    const baseline = {
      embedding: crossView((x) => projectFrames(randomEncoder, randomHead, x), held, window),
      features: crossView(features(randomEncoder), held, window),
    };
    randomEncoder.dispose();
    randomHead.dispose();
    dispose(tcn.learned);
    const broken = await run(breakPositives(train, new Rng(9)));
    dispose(broken.learned);
    const line = (r: { hit: number; meanError: number }) =>
      `${r.hit.toFixed(3)} (mean error ${r.meanError.toFixed(1)})`;
    t.log(
      `cross-view retrieval within ${window} moments, 8 held-out recordings x 36 moments x 2 directions (chance ~${(5 / 36).toFixed(3)}), ` +
        `TCN embedding / encoder features: TCN ${line(tcn.embedding)} / ${line(tcn.features)}, ` +
        `random init ${line(baseline.embedding)} / ${line(baseline.features)}, ` +
        `random positives ${line(broken.embedding)} / ${line(broken.features)}; ` +
        `triplet accuracy TCN ${tcn.accuracy.toFixed(3)}, random positives ${broken.accuracy.toFixed(3)}`,
    );
    const margin = 0.1;
    t.true(
      tcn.embedding.hit > baseline.embedding.hit + margin,
      `TCN ${tcn.embedding.hit} vs random init ${baseline.embedding.hit} + ${margin}`,
    );
    t.false(
      broken.embedding.hit > baseline.embedding.hit + margin,
      `the broken control passed: ${broken.embedding.hit} vs random init ${baseline.embedding.hit} + ${margin}`,
    );
    t.true(mean(tcn.losses.slice(-30)) < 0.7 * mean(tcn.losses.slice(0, 20)));
  },
);
