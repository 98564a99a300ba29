// issue 12: split-brain autoencoder (Zhang et al. 2017): an L -> ab half and an ab -> L half, features concatenated.
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { bufferCount, firstValueFrom, from, toArray } from 'rxjs';
import { OptionError } from '../../../core/errors.ts';
import { Rng } from '../../../core/rng.ts';
import { metricOverBatches } from '../../../evaluation/pretextMetrics.ts';
import { randomInitLike } from '../../../evaluation/evaluate.ts';
import { selectBackend } from '../../../models/backend.ts';
import { buildFrameEncoder } from '../../../models/frameEncoder.ts';
import { lastConvBlock, rgbToLabTensor } from '../../../models/labChannels.ts';
import type { Frame } from '../../../pipeline/frame.ts';
import { rgbToLab } from '../../../pipeline/labColour.ts';
import type { Sample } from '../../../pipeline/sample.ts';
import { colourBins, colorizationSample } from '../../../tasks/image/colorization.ts';
import { L_BINS, lBinOf, splitBrain, splitBrainSample } from '../../../tasks/image/splitBrain.ts';
import { TASKS, tasksReading } from '../../../tasks/registry.ts';
import type { PretextTask } from '../../../tasks/task.ts';
import { dispose, learn } from '../_learn.ts';
import { colourScenes, withShuffledTargets } from './_colourScenes.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

const SIZE = 32;
const Q = colourBins().quantizer.size;
const WIDTH = Q + L_BINS;

test('split-brain reads single images, so image runs and video runs both take it', (t) => {
  t.is(TASKS['split-brain'].reads, 'images');
  t.is(TASKS['split-brain'].family, 'image-context');
  t.true(tasksReading('images').includes('split-brain'));
  t.throws(() => splitBrain.configure({ itemShape: [32, 32, 1] }), { instanceOf: OptionError, message: /--gray/ });
});

test("a sample's label is, per location, colorization's ab target then the distribution over 50 L bins", (t) => {
  const frame = colourScenes(1, 3)[0]!;
  const sample = splitBrainSample(frame);
  const ab = colorizationSample(frame).label;
  t.deepEqual(splitBrain.labelShape([SIZE, SIZE, 3]), [16, WIDTH]);
  t.is(sample.label.length, 16 * WIDTH);
  for (let c = 0; c < 16; c++) {
    t.deepEqual([...sample.label.subarray(c * WIDTH, c * WIDTH + Q)], [...ab.subarray(c * Q, (c + 1) * Q)]);
    const l = sample.label.subarray(c * WIDTH + Q, (c + 1) * WIDTH);
    t.true(Math.abs(l.reduce((s, v) => s + v, 0) - 1) < 1e-5);
  }
  // The top-left location (pixels 0..7 x 0..7): its L histogram counts those pixels' bins.
  const counts = new Float32Array(L_BINS);
  for (let y = 0; y < 8; y++)
    for (let x = 0; x < 8; x++) {
      const i = (y * SIZE + x) * 3;
      counts[lBinOf(rgbToLab(frame.data[i]! / 255, frame.data[i + 1]! / 255, frame.data[i + 2]! / 255)[0])]! += 1 / 64;
    }
  const got = sample.label.subarray(Q, WIDTH);
  t.true(counts.every((v, k) => Math.abs(v - got[k]!) < 1e-5));
  t.is(lBinOf(0), 0);
  t.is(lBinOf(100), 49);
  t.is(lBinOf(3.9), 1);
});

test('forward gives both halves per location; the representation concatenates both halves; no leaks', async (t) => {
  const encoder = buildFrameEncoder({ inputShape: [SIZE, SIZE, 3], featureSize: 8, width: 4, blocks: 3, seed: 1 });
  const parts = splitBrain.build(encoder, new Rng(2));
  t.deepEqual(Object.keys(parts.extra!).sort(), ['ab_encoder', 'l_head']);
  t.deepEqual(parts.extra!.ab_encoder!.inputs[0]!.shape, [null, SIZE, SIZE, 2]);
  const frames = colourScenes(2, 5);
  const rgb = tf.tensor4d(Float32Array.from(frames.flatMap((f) => [...f.data].map((v) => v / 255))), [
    2,
    SIZE,
    SIZE,
    3,
  ]);
  const logits = splitBrain.forward(encoder, parts, [rgb], false);
  t.deepEqual(logits.shape, [2, 16, WIDTH]);
  const features = parts.representation!.predict(rgb) as tf.Tensor;
  t.deepEqual(features.shape, [2, 512]);
  // The first half of the representation is the shared encoder's last conv block on L (4 x 4 x 16, flattened),
  // the second the ab encoder's on ab.
  const l3 = tf.tidy(() =>
    tf.tile(tf.div(tf.slice(rgbToLabTensor(rgb), [0, 0, 0, 0], [-1, -1, -1, 1]), 100), [1, 1, 1, 3]),
  );
  const own = tf.tidy(() => tf.reshape(lastConvBlock(encoder).predict(l3) as tf.Tensor, [2, 256]));
  const gap = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.slice(features, [0, 0], [-1, 256]), own))).dataSync()[0]!);
  t.true(gap < 1e-4, `${gap}`);
  // The random-init copy that evaluation builds is of the same architecture.
  const fresh = await randomInitLike(parts.representation!);
  t.deepEqual(fresh.outputs[0]!.shape, [null, 512]);
  fresh.dispose();
  const before = tf.memory().numTensors;
  for (const training of [true, false, true]) tf.dispose(splitBrain.forward(encoder, parts, [rgb], training));
  t.is(tf.memory().numTensors, before);
  tf.dispose([rgb, logits, features, own, l3]);
  encoder.dispose();
  parts.head.dispose();
  Object.values(parts.extra!).forEach((m) => m.dispose());
});

test("the loss is the sum of the two halves' cross-entropies, the metric the mean of their accuracies", (t) => {
  const rng = new Rng(8);
  const labels = tf.tidy(() => {
    const ab = tf.oneHot(tf.tensor2d([[3, 7]], [1, 2], 'int32'), Q);
    const l = tf.oneHot(tf.tensor2d([[10, 20]], [1, 2], 'int32'), L_BINS);
    return tf.concat([ab, l], -1);
  });
  const logits = tf.tensor3d(
    Float32Array.from({ length: 2 * WIDTH }, () => rng.next()),
    [1, 2, WIDTH],
  );
  const naive = tf.tidy(() => {
    const [abL, lL] = [tf.slice(labels, [0, 0, 0], [-1, -1, Q]), tf.slice(labels, [0, 0, Q], [-1, -1, L_BINS])];
    const [abZ, lZ] = [tf.slice(logits, [0, 0, 0], [-1, -1, Q]), tf.slice(logits, [0, 0, Q], [-1, -1, L_BINS])];
    const ce = (y: tf.Tensor, z: tf.Tensor) => tf.mean(tf.neg(tf.sum(tf.mul(y, tf.logSoftmax(z)), -1)));
    return tf.add(ce(abL, abZ), ce(lL, lZ)).dataSync()[0]!;
  });
  t.true(Math.abs(splitBrain.loss(labels, logits).dataSync()[0]! - naive) < 1e-5);
  const perfect = tf.tidy(() => tf.mul(labels, 50));
  t.is(splitBrain.metric(labels, perfect).dataSync()[0], 1);
  tf.dispose([labels, logits, perfect]);
});

// Scored on 48 held-out scenes (768 locations, each scored on both halves): the mean of the two halves' location
// accuracies. Baseline: each half predicting the training set's commonest target bin everywhere, measured here.
// The shuffled-target control (each image gets the targets of another) can learn only those priors; the margin is
// set above them.
const MARGIN = 0.2;
const STEPS = 150;
const training = colourScenes(96, 7);

async function batchesOf(frames: Frame[]): Promise<Sample[][]> {
  return firstValueFrom(from(frames).pipe(splitBrain.sampler({ rng: new Rng(1) }), bufferCount(16), toArray()));
}
const heldOut = batchesOf(colourScenes(48, 900));

/** The mean over both halves of the accuracy of predicting `train`'s commonest target bin on `heldOut`. */
function priorAccuracy(train: Sample[][], heldOut: Sample[][]): number {
  const half = (from: number, size: number) => {
    const modes = (samples: Sample[][]) =>
      samples.flat().flatMap((s) =>
        Array.from({ length: s.label.length / WIDTH }, (_, c) => {
          const row = s.label.subarray(c * WIDTH + from, c * WIDTH + from + size);
          return row.indexOf(Math.max(...row));
        }),
      );
    const counts = new Map<number, number>();
    for (const m of modes(train)) counts.set(m, (counts.get(m) ?? 0) + 1);
    const commonest = [...counts].sort((x, y) => y[1] - x[1])[0]![0];
    const held = modes(heldOut);
    return held.filter((m) => m === commonest).length / held.length;
  };
  return (half(0, Q) + half(Q, L_BINS)) / 2;
}

async function trainedAccuracy(task: PretextTask<Frame>): Promise<number> {
  const learned = await learn(task, training, SIZE, { steps: STEPS, batchSize: 8 });
  const parts = learned.result.parts['split-brain']!;
  const { accuracy } = await metricOverBatches(splitBrain, learned.encoder, parts, await heldOut, [SIZE, SIZE, 3]);
  dispose(learned);
  Object.values(parts.extra!).forEach((m) => m.dispose());
  return accuracy;
}

test.serial('split-brain learns both directions on held-out scenes, well above the priors', async (t) => {
  const prior = priorAccuracy(await batchesOf(training), await heldOut);
  const trained = await trainedAccuracy(splitBrain);
  t.log(`held-out mean location accuracy (n=768 x 2): split-brain ${trained.toFixed(3)}, prior ${prior.toFixed(3)}`);
  t.true(trained > prior + MARGIN, `split-brain ${trained.toFixed(3)}, prior ${prior.toFixed(3)}`);
});

test.serial('broken control: the same run with targets from other images does no better than the priors', async (t) => {
  const prior = priorAccuracy(await batchesOf(training), await heldOut);
  const shuffled = await trainedAccuracy(withShuffledTargets(splitBrain));
  t.log(
    `held-out mean location accuracy (n=768 x 2): shuffled targets ${shuffled.toFixed(3)}, prior ${prior.toFixed(3)}`,
  );
  t.true(shuffled < prior + MARGIN, `shuffled ${shuffled.toFixed(3)}, prior ${prior.toFixed(3)}`);
});
