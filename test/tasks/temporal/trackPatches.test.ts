import test from 'ava';
import { longSerial } from '../../_long.ts';
import * as tf from '@tensorflow/tfjs';
import { firstValueFrom, from, toArray } from 'rxjs';
import { syntheticFrames } from '../../../fixtures/frames.ts';
import { renderSyntheticClip } from '../../../fixtures/renderSyntheticClip.ts';
import { selectBackend } from '../../../models/backend.ts';
import { buildFrameEncoder } from '../../../models/frameEncoder.ts';
import { OptionError, TaskSamplesError } from '../../../core/errors.ts';
import { Rng } from '../../../core/rng.ts';
import type { Frame } from '../../../pipeline/frame.ts';
import type { Sample } from '../../../pipeline/sample.ts';
import { pickBatchNegatives, sourceId } from '../../../tasks/contrastive/tripletTask.ts';
import {
  pickMovingPatch,
  sampleTrackedPatches,
  trackingTask,
  trackPatch,
  trackPatches,
} from '../../../tasks/temporal/trackPatches.ts';
import { meanColour, rankedRight, scoreHeldOut } from './_heldOut.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

test('the picked patch covers the moving shape and block matching follows it', (t) => {
  const options = { width: 48, height: 48, frames: 6, speed: [2, 3] as [number, number] };
  const frames = syntheticFrames({ clips: 1, seed: 21, ...options });
  const truth = renderSyntheticClip({ seed: 21, ...options }).trajectory;
  const side = 20;
  const start = pickMovingPatch(frames[0]!, frames[1]!, side, new Rng(1));
  t.true(start.motion > 0.02);
  // The shape's centre lies inside the picked patch.
  t.true(
    Math.abs(start.x + side / 2 - truth[0]!.x) < side / 2 && Math.abs(start.y + side / 2 - truth[0]!.y) < side / 2,
  );
  const track = trackPatch(frames.slice(0, 5), start, side, 6);
  for (let k = 1; k < 5; k++) {
    const moved = { x: track[k]!.x - start.x, y: track[k]!.y - start.y };
    const truthMoved = { x: truth[k]!.x - truth[0]!.x, y: truth[k]!.y - truth[0]!.y };
    t.true(
      Math.hypot(moved.x - truthMoved.x, moved.y - truthMoved.y) < 2.5,
      `frame ${k}: tracked ${JSON.stringify(moved)}, true ${JSON.stringify(truthMoved)}`,
    );
  }
});

test('over 30 frames at the speed of real video, block matching ends on the shape in most tracks', (t) => {
  let onShape = 0;
  let tracks = 0;
  for (let seed = 0; seed < 10; seed++) {
    const clip = renderSyntheticClip({ seed: 40 + seed, width: 32, height: 32, frames: 60, speed: [1, 2] });
    const frames = syntheticFrames({ clips: 1, seed: 40 + seed, width: 32, height: 32, frames: 60, speed: [1, 2] });
    for (let first = 0; first + 30 <= 60; first += 10) {
      const start = pickMovingPatch(frames[first]!, frames[first + 1]!, 16, new Rng(seed));
      const end = trackPatch(frames.slice(first, first + 30), start, 16, 6).at(-1)!;
      const centre = clip.trajectory[first + 29]!;
      tracks++;
      if (Math.abs(end.x + 8 - centre.x) < 8 && Math.abs(end.y + 8 - centre.y) < 8) onShape++;
    }
  }
  t.log(`${onShape} of ${tracks} tracks end with the shape's centre in the patch`);
  t.true(onShape / tracks > 0.75, `${onShape} of ${tracks}`);
});

test('negatives come from other videos, samples carry both videos, and the sampler is reproducible', async (t) => {
  const frames = syntheticFrames({ clips: 3, seed: 8, frames: 30, width: 16, height: 16 });
  const run = () =>
    firstValueFrom(
      from(frames).pipe(sampleTrackedPatches({ rng: new Rng(4) }, { trackLength: 8, stride: 2 }), toArray()),
    );
  const [a, b] = [await run(), await run()];
  t.true(a.length >= 6, `${a.length} samples`);
  t.deepEqual(
    a.map((s) => s.inputs[2]![5]),
    b.map((s) => s.inputs[2]![5]),
  );
  t.false(
    a.some((s) => s.source === 'synthetic-8'),
    'the first video has no other video to draw negatives from',
  );
  for (const s of a) {
    const [anchorVideo, negativeVideo] = s.inputs[3]!;
    t.is(anchorVideo, sourceId(s.source!));
    t.not(negativeVideo, anchorVideo);
  }
});

test('tracking on fewer than two videos fails when its sampler is built, naming the task, the input and the fix', (t) => {
  t.throws(() => sampleTrackedPatches({ rng: new Rng(1), inputs: ['a.mp4'] }), {
    instanceOf: TaskSamplesError,
    message:
      'tracking needs at least 2 videos (its negatives are patches of other videos): got 1 (a.mp4); give --video more files',
  });
  t.notThrows(() => sampleTrackedPatches({ rng: new Rng(1), inputs: ['a.mp4', 'b.mp4'] }));
  t.throws(() => sampleTrackedPatches({ rng: new Rng(1) }, { patchFraction: 1 }), {
    instanceOf: OptionError,
    message: /patchFraction/,
  });
  t.throws(() => sampleTrackedPatches({ rng: new Rng(1) }, { trackLength: 1 }), {
    instanceOf: OptionError,
    message: /trackLength/,
  });
});

/** A naive reference of `pickBatchNegatives`: every row of another video, sorted by dot product with the anchor. */
function naiveHardest(embeddings: number[][], videos: number[][], k: number): number[] {
  const batch = videos.length;
  const videoOf = (row: number) => (row < 2 * batch ? videos[row % batch]![0]! : videos[row - 2 * batch]![1]!);
  return videos.flatMap(([anchorVideo], i) => {
    const dot = (row: number) => embeddings[i]!.reduce((s, v, d) => s + v * embeddings[row]![d]!, 0);
    const rows = embeddings.map((_, row) => row).filter((row) => videoOf(row) !== anchorVideo);
    rows.sort((p, q) => dot(q) - dot(p) || p - q);
    return Array.from({ length: k }, (_, j) => rows[j] ?? 2 * batch + i);
  });
}

test('batch negatives are the nearest rows of other videos (or random ones), never of the anchor video', (t) => {
  const rng = new Rng(5);
  const batch = 6;
  const dim = 4;
  const embeddings = Array.from({ length: 3 * batch }, () => Array.from({ length: dim }, () => rng.normal()));
  // Videos 1, 1, 2, 2, 3, 4 with own negatives of other videos; video 4's anchor has few candidates.
  const videos = [
    [1, 2],
    [1, 3],
    [2, 1],
    [2, 4],
    [3, 1],
    [4, 4],
  ];
  const flat = Float32Array.from(embeddings.flat());
  const hardest = pickBatchNegatives(flat, dim, Float32Array.from(videos.flat()), 3, 'hardest');
  t.deepEqual([...hardest], naiveHardest(embeddings, videos, 3));
  const random = pickBatchNegatives(flat, dim, Float32Array.from(videos.flat()), 3, new Rng(2));
  const videoOf = (row: number) => (row < 2 * batch ? videos[row % batch]![0]! : videos[row - 2 * batch]![1]!);
  for (let i = 0; i < batch; i++) {
    for (const row of random.slice(i * 3, i * 3 + 3)) t.not(videoOf(row), videos[i]![0], `pair ${i}, row ${row}`);
  }
  t.deepEqual([...random], [...pickBatchNegatives(flat, dim, Float32Array.from(videos.flat()), 3, new Rng(2))]);
  // Only one video in the batch: every pair falls back to its own negative.
  const alone = pickBatchNegatives(flat.slice(0, 3 * 2 * dim), dim, Float32Array.of(7, 7, 7, 7), 2, 'hardest');
  t.deepEqual([...alone], [4, 4, 5, 5]);
});

const cosineDistance = (a: number[], b: number[]): number => {
  const dot = a.reduce((s, v, i) => s + v * b[i]!, 0);
  return 1 - dot / (Math.hypot(...a) * Math.hypot(...b));
};

test("the loss is the paper's (1 - cos, margin 0.5) over the batch negatives, the metric ranks the own negative", (t) => {
  const rng = new Rng(9);
  // [batch 5, 3 + k 2, dim 3]: anchor, positive, own negative, two batch negatives.
  const rows = Array.from({ length: 5 }, () => Array.from({ length: 5 }, () => [0, 0, 0].map(() => rng.normal())));
  const predictions = tf.tensor3d(rows);
  const labels = tf.ones([5, 1]);
  const hinge = rows.flatMap(([a, p, , n1, n2]) =>
    [n1!, n2!].map((n) => Math.max(0, cosineDistance(a!, p!) - cosineDistance(a!, n) + 0.5)),
  );
  const right = rows.filter(([a, p, n]) => cosineDistance(a!, p!) < cosineDistance(a!, n!)).length;
  const loss = trackPatches.loss(labels, predictions);
  const metric = trackPatches.metric(labels, predictions);
  t.true(Math.abs(loss.dataSync()[0]! - hinge.reduce((x, y) => x + y) / hinge.length) < 1e-5);
  t.true(Math.abs(metric.dataSync()[0]! - right / 5) < 1e-6);
  tf.dispose([predictions, labels, loss, metric]);
});

test('training forward: k random batch negatives during the warm-up, the k hardest after, a step count as state; no leak', (t) => {
  const task = trackingTask({ batchNegatives: { negatives: 2, warmupSteps: 1 } });
  const encoder = buildFrameEncoder({ inputShape: [8, 8, 3], featureSize: 8, width: 4, blocks: 1, seed: 1 });
  const before = tf.memory().numTensors;
  const parts = task.build(encoder, new Rng(1));
  const rng = new Rng(3);
  const frames = () =>
    tf.tensor4d(
      Array.from({ length: 4 * 8 * 8 * 3 }, () => rng.next()),
      [4, 8, 8, 3],
    );
  const inputs = [frames(), frames(), frames(), tf.tensor2d([1, 2, 2, 1, 3, 1, 3, 2], [4, 2])];
  const warm = task.forward(encoder, parts, inputs, true);
  t.deepEqual(warm.shape, [4, 5, 32]);
  parts.state!.afterStep!(encoder);
  t.deepEqual(parts.state!.tensors().steps!.dataSync()[0], 1);
  const mined = task.forward(encoder, parts, inputs, true);
  const own = task.forward(encoder, parts, inputs, false);
  t.deepEqual(own.shape, [4, 3, 32]);
  // The hardest picks, recomputed from the inference embeddings (batch norm in training mode differs, so use
  // the training ones: rows 0..2 of `mined` are the pairs and own negatives as the training pass saw them).
  const embeddings = tf.tidy(() =>
    tf.reshape(tf.transpose(tf.slice(mined, [0, 0, 0], [-1, 3, -1]), [1, 0, 2]), [12, 32]),
  );
  const picks = pickBatchNegatives(
    embeddings.dataSync() as Float32Array,
    32,
    Float32Array.of(1, 2, 2, 1, 3, 1, 3, 2),
    2,
    'hardest',
  );
  const expected = tf.tidy(() => tf.gather(embeddings, tf.tensor1d(picks, 'int32')));
  const got = tf.tidy(() => tf.reshape(tf.slice(mined, [0, 3, 0], [-1, 2, -1]), [8, 32]));
  const gap = tf.tidy(() => tf.max(tf.abs(tf.sub(expected, got))));
  t.true(gap.dataSync()[0]! < 1e-5);
  tf.dispose([warm, mined, own, embeddings, expected, got, gap, ...inputs]);
  parts.head.dispose();
  parts.state!.dispose();
  t.is(tf.memory().numTensors, before);
  encoder.dispose();
});

// Clips that share a look (colours and shape size) and differ in their stripes' angle and period, shape class and
// motion: colour alone cannot tell their patches apart, the background's pattern can. Slow shapes (1-2 px a frame,
// as a real object at 25 fps), so that the tracker follows them.
const SIZE = 20;
function sameLookClips(count: number, frames: number): Frame[][] {
  return Array.from({ length: count }, (_, i) => {
    const clip = renderSyntheticClip({
      seed: 100 + i,
      label: 2 + (i % 4),
      look: 7,
      background: 'stripes',
      speed: [1, 2],
      width: SIZE,
      height: SIZE,
      frames,
    });
    return clip.pixels.map((data, index) => ({
      data,
      width: SIZE,
      height: SIZE,
      channels: 3 as const,
      index,
      timestamp: index / 12,
      source: `look7-${i}`,
    }));
  });
}

/** Positives replaced by the positive of a random sample: the broken control, the same run but for the signal. */
function shufflePositives(samples: readonly Sample[], rng: Rng): Sample[] {
  const positives = rng.shuffle(samples.map((s) => s.inputs[1]!));
  return samples.map((s, i) => ({ ...s, inputs: [s.inputs[0]!, positives[i]!, s.inputs[2]!, s.inputs[3]!] }));
}

longSerial(
  'tracking learns what colour alone cannot: held-out tracks ranked right, the broken control is not',
  async (t) => {
    // 12 clips of 72 frames: tracks of the first 48 frames train, tracks of the last 24 are held out. Tracks of
    // 12 frames (1 s at the fixture's 12 fps); 4 batch negatives a pair, the hardest after 100 of 200 steps.
    const clips = sameLookClips(12, 72);
    const options = { trackLength: 12 };
    const sample = async (frames: Frame[], rng: Rng, stride: number) =>
      firstValueFrom(from(frames).pipe(sampleTrackedPatches({ rng }, { ...options, stride }), toArray()));
    const pool: Sample[] = [];
    for (const seed of [0, 1]) {
      const rng = new Rng(seed);
      pool.push(...(await sample(rng.shuffle(clips.map((c) => c.slice(0, 48))).flat(), rng.fork(), 3)));
    }
    const heldOut = await sample(
      clips.flatMap((c) => c.slice(48)),
      new Rng(99),
      2,
    );
    const task = trackingTask({ sampler: options, batchNegatives: { negatives: 4, warmupSteps: 100 } });
    const train = { steps: 200, learningRate: 6e-3 };
    const learned = await scoreHeldOut(task, pool, heldOut, SIZE, train);
    const broken = await scoreHeldOut(task, shufflePositives(pool, new Rng(5)), heldOut, SIZE, train);
    const colour = rankedRight(heldOut, meanColour);
    // Chance is 0.5; the baseline is the best of chance, colour alone and the untrained encoder.
    const baseline = Math.max(0.5, colour, learned.baseline);
    const margin = 0.12;
    t.log(
      `${pool.length} training, ${heldOut.length} held-out triplets: colour alone ${colour.toFixed(3)}, untrained ` +
        `${learned.baseline.toFixed(3)}, trained ${learned.trained.toFixed(3)}, broken control ${broken.trained.toFixed(3)}`,
    );
    t.true(colour < 0.6, `colour alone ranks ${colour.toFixed(3)} of held-out triplets right`);
    t.true(
      learned.trained > baseline + margin,
      `trained ${learned.trained.toFixed(3)} vs baseline ${baseline.toFixed(3)}`,
    );
    t.false(broken.trained > baseline + margin, `broken control ${broken.trained.toFixed(3)} passed`);
  },
);
