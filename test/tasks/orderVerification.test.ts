import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { firstValueFrom, from, toArray } from 'rxjs';
import { syntheticFrames } from '../../fixtures/frames.ts';
import { OptionError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';
import { orderTuple, sampleFrameOrder } from '../../tasks/temporal/orderVerification.ts';
import { binaryAccuracy } from '../../tasks/losses/binaryCrossEntropy.ts';
import { binaryCrossEntropy } from '../../tasks/losses/binaryCrossEntropy.ts';
import type { Frame } from '../../pipeline/frame.ts';

const frames = syntheticFrames({ clips: 2, seed: 5, frames: 24, width: 16, height: 16 });

function fakeWindow(): Frame[] {
  return [0, 1, 2, 3, 4].map(
    (index) =>
      ({
        data: new Uint8Array([index]),
        width: 1,
        height: 1,
        channels: 1,
        index,
        timestamp: index,
        source: 's',
      }) as Frame,
  );
}

test('positive tuples are b,c,d or d,c,b and negatives put a or e in the middle', (t) => {
  const rng = new Rng(3);
  for (let i = 0; i < 200; i++) {
    const { frames: tuple, label } = orderTuple(fakeWindow(), rng, 0.5);
    const order = tuple.map((f) => f.index).join('');
    t.true(label === 1 ? ['123', '321'].includes(order) : ['103', '143', '301', '341'].includes(order), order);
  }
});

test('the sampler is reproducible from its seed and never mixes two videos', async (t) => {
  const run = () => firstValueFrom(from(frames).pipe(sampleFrameOrder({ rng: new Rng(9) }), toArray()));
  const [a, b] = [await run(), await run()];
  t.true(a.length > 10);
  t.deepEqual(
    a.map((s) => s.label[0]),
    b.map((s) => s.label[0]),
  );
  t.deepEqual(a[3]!.inputs[1], b[3]!.inputs[1]);
  const sources = new Set(a.map((s) => s.source));
  t.is(sources.size, 2);
  const labels = a.map((s) => s.label[0]!);
  t.true(labels.includes(0) && labels.includes(1));
});

test('still windows are dropped', async (t) => {
  const still = frames.slice(0, 24).map((f) => ({ ...f, data: frames[0]!.data }));
  const samples = await firstValueFrom(from(still).pipe(sampleFrameOrder({ rng: new Rng(1) }), toArray()));
  t.is(samples.length, 0);
});

test('bad sampler options are rejected when built', (t) => {
  t.throws(() => sampleFrameOrder({ rng: new Rng(1) }, { gap: 0 }), { instanceOf: OptionError, message: /gap/ });
  t.throws(() => sampleFrameOrder({ rng: new Rng(1) }, { negativeFraction: 1 }), { instanceOf: OptionError });
});

test('the loss matches a naive binary cross-entropy and accuracy counts signs', (t) => {
  const labels = tf.tensor2d([[1], [0], [1]]);
  const logits = tf.tensor2d([[2], [-1], [-0.5]]);
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  const naive = -[Math.log(sigmoid(2)), Math.log(1 - sigmoid(-1)), Math.log(sigmoid(-0.5))].reduce((a, b) => a + b) / 3;
  t.true(Math.abs(binaryCrossEntropy(labels, logits).dataSync()[0]! - naive) < 1e-5);
  t.true(Math.abs(binaryAccuracy(labels, logits).dataSync()[0]! - 2 / 3) < 1e-6);
  tf.dispose([labels, logits]);
});
