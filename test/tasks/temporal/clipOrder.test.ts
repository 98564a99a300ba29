import test from 'ava';
import { longSerial } from '../../_long.ts';
import * as tf from '@tensorflow/tfjs';
import { bufferCount, firstValueFrom, from, map, pipe, toArray } from 'rxjs';
import { syntheticFrames } from '../../../fixtures/frames.ts';
import { selectBackend } from '../../../models/backend.ts';
import { buildFrameEncoder } from '../../../models/frameEncoder.ts';
import { OptionError } from '../../../core/errors.ts';
import type { Frame } from '../../../pipeline/frame.ts';
import { Rng } from '../../../core/rng.ts';
import { metricOverBatches } from '../../../evaluation/pretextMetrics.ts';
import type { PretextTask } from '../../../tasks/task.ts';
import type { Sample } from '../../../pipeline/sample.ts';
import {
  clipOrder,
  createClipOrderTask,
  encodeClips,
  permutations,
  sampleClipOrder,
  shuffleTuple,
} from '../../../tasks/temporal/clipOrder.ts';
import { categoricalAccuracy, softmaxCrossEntropy } from '../../../tasks/losses/softmaxCrossEntropy.ts';
import { dispose, learn, mean } from '../_learn.ts';

const SIZE = 24;
test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

/** A sawtooth pattern sliding by 4 levels a frame (it moves, its histogram stays: no cut), index in the first byte. */
function indexedFrames(count: number, source = 'v'): Frame[] {
  return Array.from({ length: count }, (_, index) => {
    const data = Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * 5 + 4 * index) % 256);
    data[0] = index;
    return { data, width: 8, height: 8, channels: 3, index, timestamp: index / 12, source };
  });
}

test('permutations lists all n! orders once, lexicographically', (t) => {
  t.deepEqual(permutations(3), [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
  ]);
  t.is(new Set(permutations(4).map((p) => p.join())).size, 24);
});

test('a shuffled tuple is labelled with the permutation that was applied', (t) => {
  const rng = new Rng(1);
  const seen = new Set<number>();
  for (let i = 0; i < 100; i++) {
    const { items, label } = shuffleTuple(['a', 'b', 'c'], rng);
    const k = label.indexOf(1);
    seen.add(k);
    t.deepEqual(
      items,
      permutations(3)[k]!.map((i) => 'abc'[i]),
    );
  }
  t.is(seen.size, 6);
});

test('a sample is three clips of L consecutive frames, the interval apart, in the order its label names', async (t) => {
  const run = () =>
    firstValueFrom(
      from(indexedFrames(40)).pipe(
        sampleClipOrder({ rng: new Rng(3) }, { clips: 3, clipLength: 4, interval: 2, stride: 3 }),
        toArray(),
      ),
    );
  const [a, b] = [await run(), await run()];
  // Tuples span 3 * 4 + 2 * 2 = 16 frames, one every 3 frames: starts 0, 3, ..., 24.
  t.is(a.length, 9);
  const size = 8 * 8 * 3;
  a.forEach((sample, s) => {
    t.is(sample.inputs.length, 3);
    t.is(sample.label.length, 6);
    const slots = sample.inputs.map((clip) => Array.from({ length: 4 }, (_, f) => Math.round(clip[f * size]! * 255)));
    // Undo the permutation: slot i holds clip perm[i] of the tuple.
    const perm = permutations(3)[sample.label.indexOf(1)]!;
    const ordered: number[][] = [];
    perm.forEach((clip, slot) => (ordered[clip] = slots[slot]!));
    const start = 3 * s;
    t.deepEqual(
      ordered,
      [0, 6, 12].map((offset) => [0, 1, 2, 3].map((f) => start + offset + f)),
    );
  });
  t.deepEqual(
    a.map((s) => s.label.indexOf(1)),
    b.map((s) => s.label.indexOf(1)),
  );
});

test('bad options are named when the task is made', (t) => {
  t.throws(() => createClipOrderTask({ clips: 5 }), { instanceOf: OptionError, message: /clips/ });
  t.throws(() => createClipOrderTask({ clipLength: 0 }), { instanceOf: OptionError, message: /clipLength/ });
  t.throws(() => createClipOrderTask({ interval: -1 }), { instanceOf: OptionError, message: /interval/ });
  t.throws(() => sampleClipOrder({ rng: new Rng(1) }, { minMotion: 1 }), {
    instanceOf: OptionError,
    message: /minMotion/,
  });
});

test("clip features are the mean of the shared encoder over each clip's frames", (t) => {
  const encoder = buildFrameEncoder({ inputShape: [8, 8, 3], featureSize: 5, width: 4, blocks: 2, seed: 1 });
  const clips = [0, 1, 2].map((s) => tf.randomUniform([2, 4, 8, 8, 3], 0, 1, 'float32', s + 1));
  const before = tf.memory().numTensors;
  const features = encodeClips(encoder, clips, false);
  t.is(tf.memory().numTensors, before + 3);
  clips.forEach((clip, i) => {
    const expected = tf.tidy(() =>
      tf.mean(tf.reshape(encoder.apply(tf.reshape(clip, [8, 8, 8, 3])) as tf.Tensor, [2, 4, 5]), 1),
    );
    t.deepEqual(features[i]!.shape, [2, 5]);
    t.true(tf.max(tf.abs(tf.sub(features[i]!, expected))).dataSync()[0]! < 1e-5);
    expected.dispose();
  });
  tf.dispose([...clips, ...features]);
  encoder.dispose();
});

test('the head relates every pair of clips and names one of n! orders, for 3 and 4 clips', (t) => {
  for (const [clips, classes, pairs] of [
    [3, 6, 3],
    [4, 24, 6],
  ] as const) {
    const task = createClipOrderTask({ clips, clipLength: 2 });
    t.deepEqual(task.inputShapes([8, 8, 3]), Array(clips).fill([2, 8, 8, 3]));
    t.deepEqual(task.labelShape([8, 8, 3]), [classes]);
    const encoder = buildFrameEncoder({ inputShape: [8, 8, 3], featureSize: 5, width: 4, blocks: 2, seed: 1 });
    const parts = task.build(encoder, new Rng(2));
    t.is(parts.head.layers.filter((l) => /^pair\d+$/.test(l.name)).length, pairs);
    const inputs = Array.from({ length: clips }, () => tf.randomUniform([3, 2, 8, 8, 3]));
    const logits = task.forward(encoder, parts, inputs, true);
    t.deepEqual(logits.shape, [3, classes]);
    tf.dispose([...inputs, logits]);
    encoder.dispose();
    parts.head.dispose();
  }
});

test('loss and accuracy match a naive softmax cross-entropy and arg-max count', (t) => {
  const logits = [
    [2, 0, -1],
    [0.5, 0.2, 0.1],
  ];
  const labels = [
    [0, 0, 1],
    [1, 0, 0],
  ];
  const naive = -mean(
    logits.map((row, i) => {
      const z = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
      return row[labels[i]!.indexOf(1)]! - z;
    }),
  );
  const [l, y] = [tf.tensor2d(labels), tf.tensor2d(logits)];
  t.true(Math.abs(softmaxCrossEntropy(l, y).dataSync()[0]! - naive) < 1e-5);
  t.is(categoricalAccuracy(l, y).dataSync()[0], 0.5);
  tf.dispose([l, y]);
});

/** The same task with each label replaced by a random order class: the clips no longer tell the label. */
function withShuffledLabels(task: PretextTask<Frame>): PretextTask<Frame> {
  return {
    ...task,
    sampler: (context) => {
      const rng = context.rng.fork();
      return pipe(
        task.sampler(context),
        map((sample) => {
          const label = new Float32Array(sample.label.length);
          label[rng.int(label.length)] = 1;
          return { ...sample, label };
        }),
      );
    },
  };
}

// Slow shapes (0.6-1.2 px a frame at 24 px) so that a 16-frame tuple seldom bounces off a border twice. Chance is
// 1/6; 1/2 is the most a model can reach here, as a slide played backwards is a slide too. The run and its broken
// control are two tests on the same clips, held-out samples and schedule (300 steps: at 150, one of two training
// sets of clips stayed at 0.21).
const CHANCE = 1 / 6;
const MARGIN = 0.1;
const STEPS = 300;
const shapeClips = (seed: number) =>
  syntheticFrames({ clips: 24, seed, frames: 48, width: SIZE, height: SIZE, speed: [0.6, 1.2] });
let heldOutBatches: Promise<Sample[][]> | undefined;

/** Accuracy on the samples of 24 clips never trained on (182 tuples), inference mode. */
async function heldOutAccuracy(
  encoder: tf.LayersModel,
  head: tf.LayersModel,
): Promise<{ accuracy: number; n: number }> {
  heldOutBatches ??= firstValueFrom(
    from(shapeClips(1000)).pipe(clipOrder.sampler({ rng: new Rng(77) }), bufferCount(32), toArray()),
  );
  const batches = await heldOutBatches;
  const { accuracy, samples } = await metricOverBatches(clipOrder, encoder, { head }, batches, [SIZE, SIZE, 3]);
  return { accuracy, n: samples };
}

async function trainedAccuracy(task: PretextTask<Frame>): Promise<{ accuracy: number; n: number }> {
  const learned = await learn(task, shapeClips(3), SIZE, { steps: STEPS });
  const result = await heldOutAccuracy(learned.encoder, learned.result.heads.vcop!);
  dispose(learned);
  return result;
}

longSerial('VCOP learns clip order that holds on held-out clips, well above chance and random init', async (t) => {
  const fresh = buildFrameEncoder({ inputShape: [SIZE, SIZE, 3], featureSize: 32, width: 8, blocks: 2, seed: 1 });
  const freshHead = clipOrder.build(fresh, new Rng(4)).head;
  const randomInit = await heldOutAccuracy(fresh, freshHead);
  fresh.dispose();
  freshHead.dispose();
  const vcop = await trainedAccuracy(clipOrder);
  t.log(
    `held-out accuracy (n=${vcop.n}): vcop ${vcop.accuracy.toFixed(3)}, random init ${randomInit.accuracy.toFixed(3)}, chance ${CHANCE.toFixed(3)}`,
  );
  t.true(vcop.accuracy > CHANCE + MARGIN, `vcop ${vcop.accuracy.toFixed(3)}`);
  t.true(randomInit.accuracy < CHANCE + MARGIN, `random init ${randomInit.accuracy.toFixed(3)}`);
});

longSerial('broken control: the same run with shuffled order labels stays near chance on held-out clips', async (t) => {
  const shuffled = await trainedAccuracy(withShuffledLabels(clipOrder));
  t.log(
    `held-out accuracy (n=${shuffled.n}): shuffled labels ${shuffled.accuracy.toFixed(3)}, chance ${CHANCE.toFixed(3)}`,
  );
  t.true(shuffled.accuracy < CHANCE + MARGIN, `shuffled labels ${shuffled.accuracy.toFixed(3)}`);
});
