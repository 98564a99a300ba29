import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { firstValueFrom, from, toArray } from 'rxjs';
import { syntheticFrames } from '../../../fixtures/frames.ts';
import { selectBackend } from '../../../models/backend.ts';
import { OptionError } from '../../../core/errors.ts';
import type { Frame } from '../../../pipeline/frame.ts';
import { Rng } from '../../../core/rng.ts';
import { cpc, cpcAccuracy, cpcLoss, cpcTargets, sampleSequences, CPC_LENGTH } from '../../../tasks/temporal/cpc.ts';
import { dispose, learn, mean } from '../_learn.ts';

const SIZE = 24;
test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

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
});

test('the loss is InfoNCE with the true future frame of the same sequence as the positive', (t) => {
  const rng = new Rng(2);
  const [batch, steps, length] = [2, 2, 3];
  const scores = Array.from({ length: batch }, () =>
    Array.from({ length: steps }, () => Array.from({ length: batch * length }, () => 2 * rng.normal())),
  );
  // Naive: row (b, k) has its positive at column b * T + (T - K) + k.
  let total = 0;
  let right = 0;
  scores.forEach((rows, b) =>
    rows.forEach((row, k) => {
      const target = b * length + length - steps + k;
      total += Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[target]!;
      right += Number(row.indexOf(Math.max(...row)) === target);
    }),
  );
  const x = tf.tensor3d(scores);
  t.true(Math.abs(cpcLoss(x).dataSync()[0]! - total / (batch * steps)) < 1e-4);
  t.true(Math.abs(cpcAccuracy(x).dataSync()[0]! - right / (batch * steps)) < 1e-6);
  t.deepEqual(Array.from(cpcTargets(batch, length, steps).dataSync()), [1, 2, 4, 5]);
  x.dispose();
});

test('forward scores every prediction against every frame of the batch', (t) => {
  const rng = new Rng(3);
  const encoder = tf.sequential({
    layers: [tf.layers.flatten({ inputShape: [SIZE, SIZE, 3] }), tf.layers.dense({ units: 8 })],
  });
  const parts = cpc.build(encoder, rng);
  const x = tf.randomUniform([3, CPC_LENGTH, SIZE, SIZE, 3]);
  const scores = cpc.forward(encoder, parts, [x], false);
  t.deepEqual(scores.shape, [3, 2, 3 * CPC_LENGTH]);
  tf.dispose([x, scores]);
  encoder.dispose();
  parts.head.dispose();
});

test.serial('CPC learns: the loss falls and the future frame is picked far above chance', async (t) => {
  const frames = syntheticFrames({ clips: 8, seed: 3, frames: 36, width: SIZE, height: SIZE });
  const learned = await learn(cpc, frames, SIZE, { steps: 150, batchSize: 8 });
  const [first, last] = [mean(learned.losses.slice(0, 20)), mean(learned.losses.slice(-30))];
  const accuracy = mean(learned.accuracies.slice(-30));
  t.log(
    `loss ${first.toFixed(3)} -> ${last.toFixed(3)}, accuracy ${accuracy.toFixed(3)} (chance ${(1 / (8 * CPC_LENGTH)).toFixed(3)})`,
  );
  t.true(last < first * 0.7, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  t.true(accuracy > 0.3, `accuracy ${accuracy.toFixed(3)}`);
  dispose(learned);
});
