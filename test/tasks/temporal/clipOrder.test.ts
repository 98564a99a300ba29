import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { firstValueFrom, from, toArray } from 'rxjs';
import { syntheticFrames } from '../../../fixtures/frames.ts';
import { selectBackend } from '../../../models/backend.ts';
import { OptionError } from '../../../core/errors.ts';
import type { Frame } from '../../../pipeline/frame.ts';
import { Rng } from '../../../core/rng.ts';
import { clipOrder, permutations, sampleClipOrder, shuffleTuple } from '../../../tasks/temporal/clipOrder.ts';
import { categoricalAccuracy } from '../../../tasks/losses/softmaxCrossEntropy.ts';
import { softmaxCrossEntropy } from '../../../tasks/losses/softmaxCrossEntropy.ts';
import { dispose, learn, mean } from '../_learn.ts';

const SIZE = 24;
test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

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
  const frames = [0, 1, 2].map((index) => ({ index }) as Frame);
  const rng = new Rng(1);
  const seen = new Set<number>();
  for (let i = 0; i < 100; i++) {
    const { frames: shuffled, label } = shuffleTuple(frames, rng);
    const k = label.indexOf(1);
    seen.add(k);
    t.deepEqual(
      shuffled.map((f) => f.index),
      permutations(3)[k],
    );
  }
  t.is(seen.size, 6);
});

test('the sampler gives three frames and a one-hot label over six orders, reproducibly', async (t) => {
  const frames = syntheticFrames({ clips: 2, seed: 5, frames: 20, width: 16, height: 16 });
  const run = () => firstValueFrom(from(frames).pipe(clipOrder.sampler({ rng: new Rng(3) }), toArray()));
  const [a, b] = [await run(), await run()];
  t.true(a.length > 8);
  t.is(a[0]!.inputs.length, 3);
  t.is(a[0]!.label.length, 6);
  t.deepEqual(
    a.map((s) => s.label.indexOf(1)),
    b.map((s) => s.label.indexOf(1)),
  );
  t.throws(() => sampleClipOrder({ rng: new Rng(1) }, { length: 5 }), { instanceOf: OptionError, message: /length/ });
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

test.serial('VCOP learns: the loss falls and the order is named well above chance (1/6)', async (t) => {
  const frames = syntheticFrames({ clips: 10, seed: 3, frames: 36, width: SIZE, height: SIZE });
  const learned = await learn(clipOrder, frames, SIZE, { steps: 250 });
  const [first, last] = [mean(learned.losses.slice(0, 20)), mean(learned.losses.slice(-40))];
  const accuracy = mean(learned.accuracies.slice(-40));
  t.log(`loss ${first.toFixed(3)} -> ${last.toFixed(3)}, accuracy ${accuracy.toFixed(3)}`);
  t.true(last < first * 0.8, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  t.true(accuracy > 0.35, `accuracy ${accuracy.toFixed(3)}`);
  dispose(learned);
});
