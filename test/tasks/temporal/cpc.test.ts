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
import { collate, disposeBatch } from '../../../pipeline/batchSamples.ts';
import type { Sample } from '../../../pipeline/sample.ts';
import type { PretextTask } from '../../../tasks/task.ts';
import {
  cpc,
  cpcAccuracy,
  cpcLoss,
  cpcPairs,
  cpcScores,
  cpcTargets,
  cpcWithinSequenceAccuracy,
  createCpcTask,
  encodeSequences,
  sampleSequences,
  CPC_LENGTH,
  CPC_STEPS,
} from '../../../tasks/temporal/cpc.ts';
import { dispose, learn } from '../_learn.ts';

const SIZE = 16;
test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

const randomArray = (rng: Rng, ...shape: number[]): number[] =>
  Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());

test('sequences hold T frames of one scene as one [T, H, W, C] input', async (t) => {
  // A hard cut after frame 7: no sequence may hold frames of both shots.
  const frames: Frame[] = Array.from({ length: 16 }, (_, i) => {
    const data = new Uint8Array(16 * 16 * 3).fill(i < 8 ? 30 : 220);
    data[0] = i;
    return { data, width: 16, height: 16, channels: 3, index: i, timestamp: i / 12, source: 'v' };
  });
  const samples = await firstValueFrom(
    from(frames).pipe(sampleSequences({ rng: new Rng(1) }, { length: 4, stride: 1 }), toArray()),
  );
  // Five windows in each shot of eight frames, none across the cut.
  t.is(samples.length, 10);
  const size = 16 * 16 * 3;
  for (const s of samples) {
    t.is(s.inputs[0]!.length, 4 * size);
    const indices = Array.from({ length: 4 }, (_, k) => Math.round(s.inputs[0]![k * size]! * 255));
    t.deepEqual(
      indices,
      [0, 1, 2, 3].map((k) => indices[0]! + k),
    );
    t.true(indices[0]! + 3 < 8 || indices[0]! >= 8);
  }
  t.throws(() => sampleSequences({ rng: new Rng(1) }, { length: 1 }), { instanceOf: OptionError, message: /length/ });
  t.throws(() => createCpcTask({ length: 4, steps: 4 }), { instanceOf: OptionError, message: /steps/ });
});

test('predictions are made from every step t for every k with t + k inside the sequence', (t) => {
  t.deepEqual(
    cpcPairs(4, 2).map(({ t: step, k }) => `${step}+${k}`),
    ['0+1', '1+1', '2+1', '0+2', '1+2'],
  );
  t.is(cpcPairs(CPC_LENGTH, CPC_STEPS).length, CPC_STEPS * CPC_LENGTH - (CPC_STEPS * (CPC_STEPS + 1)) / 2);
  // Row (b, p) targets frame t + k of sequence b among the batch * T frames.
  t.deepEqual(Array.from(cpcTargets(2, 4, 2).dataSync()), [1, 2, 3, 2, 3, 5, 6, 7, 6, 7]);
});

test('scores, loss and accuracy match a naive loop over every (sequence, t, k) and every frame of the batch', (t) => {
  const rng = new Rng(2);
  const [batch, length, steps, features] = [3, 5, 2, 4];
  const z = randomArray(rng, batch, length, features);
  const predictions = randomArray(rng, batch, length, steps, features);
  const zAt = (b: number, s: number, f: number) => z[(b * length + s) * features + f]!;
  const predictionAt = (b: number, s: number, k: number, f: number) =>
    predictions[((b * length + s) * steps + k - 1) * features + f]!;
  let total = 0;
  let right = 0;
  let rightWithin = 0;
  let rows = 0;
  for (let b = 0; b < batch; b++) {
    for (let k = 1; k <= steps; k++) {
      for (let s = 0; s + k < length; s++) {
        const row: number[] = [];
        for (let b2 = 0; b2 < batch; b2++) {
          for (let s2 = 0; s2 < length; s2++) {
            let dot = 0;
            for (let f = 0; f < features; f++) dot += predictionAt(b, s, k, f) * zAt(b2, s2, f);
            row.push(dot);
          }
        }
        const target = b * length + s + k;
        total += Math.log(row.reduce((sum, v) => sum + Math.exp(v), 0)) - row[target]!;
        right += Number(row.indexOf(Math.max(...row)) === target);
        const own = row.slice(b * length, (b + 1) * length);
        rightWithin += Number(own.indexOf(Math.max(...own)) === s + k);
        rows++;
      }
    }
  }
  const scores = cpcScores(
    tf.tensor4d(predictions, [batch, length, steps, features]),
    tf.tensor3d(z, [batch, length, features]),
  );
  t.deepEqual(scores.shape, [batch, cpcPairs(length, steps).length, batch * length]);
  t.true(Math.abs(cpcLoss(scores, steps).dataSync()[0]! - total / rows) < 1e-4);
  t.true(Math.abs(cpcAccuracy(scores, steps).dataSync()[0]! - right / rows) < 1e-6);
  t.true(Math.abs(cpcWithinSequenceAccuracy(scores, steps).dataSync()[0]! - rightWithin / rows) < 1e-6);
  t.throws(() => cpcLoss(scores, 3), { instanceOf: OptionError, message: /scores/ });
  scores.dispose();
});

test('forward scores every prediction against every frame of the batch, without leaking tensors', (t) => {
  const encoder = buildFrameEncoder({ inputShape: [SIZE, SIZE, 3], featureSize: 8, width: 4, blocks: 2, seed: 1 });
  const parts = cpc.build(encoder, new Rng(3));
  const x = tf.randomUniform([3, CPC_LENGTH, SIZE, SIZE, 3]);
  const before = tf.memory().numTensors;
  const scores = cpc.forward(encoder, parts, [x], true);
  t.deepEqual(scores.shape, [3, cpcPairs(CPC_LENGTH, CPC_STEPS).length, 3 * CPC_LENGTH]);
  scores.dispose();
  t.is(tf.memory().numTensors, before);
  const one = tf.slice(x, [0], [1]);
  t.throws(() => cpc.forward(encoder, parts, [one], true), { instanceOf: OptionError, message: /--batch/ });
  tf.dispose([x, one]);
  encoder.dispose();
  parts.head.dispose();
});

test('in training mode no frame after t reaches the context at t: batch statistics span one time step', (t) => {
  // Regression (issue 9): one encoder call over all batch * T frames let batch normalization mix the statistics of
  // a sequence's future frames into the embeddings its context is built from.
  const encoder = buildFrameEncoder({ inputShape: [SIZE, SIZE, 3], featureSize: 8, width: 4, blocks: 2, seed: 1 });
  const parts = cpc.build(encoder, new Rng(4));
  const [batch, cut] = [4, 3];
  const x = tf.randomUniform([batch, CPC_LENGTH, SIZE, SIZE, 3], 0, 1, 'float32', 1);
  // The same sequences with every frame after `cut` replaced.
  const changed = tf.concat(
    [
      tf.slice(x, [0, 0], [batch, cut + 1]),
      tf.randomUniform([batch, CPC_LENGTH - cut - 1, SIZE, SIZE, 3], 0, 1, 'float32', 2),
    ],
    1,
  );
  // Scores of the predictions from t <= cut against the frames at times <= cut.
  const early = (scores: tf.Tensor): number[] => {
    const data = scores.arraySync() as number[][][];
    const rows = cpcPairs(CPC_LENGTH, CPC_STEPS).flatMap(({ t: s }, p) => (s <= cut ? [p] : []));
    return data.flatMap((b) => rows.flatMap((p) => b[p]!.filter((_, column) => column % CPC_LENGTH <= cut)));
  };
  const [a, b] = [x, changed].map((input) => tf.tidy(() => early(cpc.forward(encoder, parts, [input], true))));
  t.true(
    a!.every((v, i) => Math.abs(v - b![i]!) < 1e-4),
    'early scores moved when only later frames changed',
  );
  // The check can see a leak: one encoder call over all frames does move the early embeddings.
  const leaky = (input: tf.Tensor) =>
    tf.tidy(() => {
      const all = encoder.apply(tf.reshape(input, [batch * CPC_LENGTH, SIZE, SIZE, 3]), { training: true });
      return tf.slice(tf.reshape(all as tf.Tensor, [batch, CPC_LENGTH, -1]), [0, 0], [batch, cut + 1]).arraySync();
    });
  t.notDeepEqual(leaky(x), leaky(changed));
  const perStep = (input: tf.Tensor) =>
    tf.tidy(() => tf.slice(encodeSequences(encoder, input, true), [0, 0], [batch, cut + 1]).arraySync());
  t.deepEqual(perStep(x), perStep(changed));
  tf.dispose([x, changed]);
  encoder.dispose();
  parts.head.dispose();
});

/** The same task with the frames of every sequence in a random order: there is no future left to predict. */
function shuffledInTime(task: PretextTask<Frame>): PretextTask<Frame> {
  return {
    ...task,
    sampler: (context) => {
      const rng = context.rng.fork();
      return pipe(
        task.sampler(context),
        map((sample) => {
          const [x] = sample.inputs as [Float32Array];
          const size = x.length / CPC_LENGTH;
          const order = rng.shuffle(Array.from({ length: CPC_LENGTH }, (_, i) => i));
          const shuffled = new Float32Array(x.length);
          order.forEach((source, to) => shuffled.set(x.subarray(source * size, (source + 1) * size), to * size));
          return { ...sample, inputs: [shuffled] };
        }),
      );
    },
  };
}

// Held-out protocol shared by the run and its broken control: 32 clips to train on, 16 others to score, batches of 8
// sequences (64 candidate frames, chance 1/64), 150 steps. The asserted figure is within-sequence accuracy: among the
// T frames of its own sequence a prediction picks 1 (chance 1/8), which appearance alone cannot beat.
const SHAPE_SIZE = 24;
const BATCH = 8;
const CHANCE = 1 / CPC_LENGTH;
const MARGIN = 0.05;
const shapeClips = (count: number, seed: number) =>
  syntheticFrames({ clips: count, seed, frames: 48, width: SHAPE_SIZE, height: SHAPE_SIZE, speed: [1, 2] });
let heldOutBatches: Promise<Sample[][]> | undefined;

interface HeldOut {
  /** Accuracy among the 64 frames of the batch. */
  all: number;
  /** Accuracy among the 8 frames of the prediction's own sequence. */
  within: number;
  batches: number;
}

/** Mean accuracy and within-sequence accuracy over held-out batches of 8 sequences, inference mode. */
async function heldOutAccuracy(encoder: tf.LayersModel, head: tf.LayersModel): Promise<HeldOut> {
  heldOutBatches ??= firstValueFrom(
    from(shapeClips(16, 1000)).pipe(cpc.sampler({ rng: new Rng(77) }), bufferCount(BATCH), toArray()),
  ).then((batches) => batches.filter((b) => b.length === BATCH));
  const batches = await heldOutBatches;
  const shape = [SHAPE_SIZE, SHAPE_SIZE, 3];
  let [all, within] = [0, 0];
  for (const samples of batches) {
    const batch = collate(samples, cpc.inputShapes(shape), cpc.labelShape(shape));
    tf.tidy(() => {
      const scores = cpc.forward(encoder, { head }, batch.inputs, false);
      all += cpcAccuracy(scores, CPC_STEPS).dataSync()[0]! / batches.length;
      within += cpcWithinSequenceAccuracy(scores, CPC_STEPS).dataSync()[0]! / batches.length;
    });
    disposeBatch(batch);
  }
  return { all, within, batches: batches.length };
}

async function trainedAccuracy(task: PretextTask<Frame>): Promise<HeldOut> {
  const learned = await learn(task, shapeClips(32, 3), SHAPE_SIZE, { steps: 150, batchSize: BATCH });
  const result = await heldOutAccuracy(learned.encoder, learned.result.heads.cpc!);
  dispose(learned);
  return result;
}

const show = ({ all, within }: HeldOut) => `${within.toFixed(3)} (among the batch ${all.toFixed(3)})`;

longSerial('CPC learns to pick the future frame of held-out clips, above chance and random init', async (t) => {
  const fresh = buildFrameEncoder({
    inputShape: [SHAPE_SIZE, SHAPE_SIZE, 3],
    featureSize: 32,
    width: 8,
    blocks: 2,
    seed: 1,
  });
  const freshHead = cpc.build(fresh, new Rng(4)).head;
  const randomInit = await heldOutAccuracy(fresh, freshHead);
  fresh.dispose();
  freshHead.dispose();
  const trained = await trainedAccuracy(cpc);
  t.log(
    `held-out within-sequence accuracy, ${trained.batches} batches: cpc ${show(trained)}, random init ${show(randomInit)}; ` +
      `chance ${CHANCE.toFixed(3)} (among the batch ${(1 / (BATCH * CPC_LENGTH)).toFixed(3)})`,
  );
  t.true(trained.within > CHANCE + MARGIN, `cpc ${show(trained)}`);
  t.true(randomInit.within < CHANCE + MARGIN, `random init ${show(randomInit)}`);
});

longSerial(
  'broken control: the same run on sequences shuffled in time stays near chance on held-out clips',
  async (t) => {
    const shuffled = await trainedAccuracy(shuffledInTime(cpc));
    t.log(`held-out within-sequence accuracy: shuffled in time ${show(shuffled)}; chance ${CHANCE.toFixed(3)}`);
    t.true(shuffled.within < CHANCE + MARGIN, `shuffled in time ${show(shuffled)}`);
  },
);
