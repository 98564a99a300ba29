import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { firstValueFrom, from, toArray } from 'rxjs';
import { syntheticFrames } from '../../fixtures/frames.ts';
import { OptionError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';
import { selectBackend } from '../../models/backend.ts';
import { motionScore } from '../../pipeline/motionScore.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { orderTuple, orderVerification, sampleFrameOrder } from '../../tasks/temporal/orderVerification.ts';
import { binaryAccuracy } from '../../tasks/losses/binaryCrossEntropy.ts';
import { binaryCrossEntropy } from '../../tasks/losses/binaryCrossEntropy.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { scoreHeldOut } from './temporal/_heldOut.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

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
  t.true(a.length >= 6, `${a.length} samples`);
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

/** A white 6 x 6 square on grey, 72 x 12 pixels, moving right 2 px a frame for 12 frames, then 0.5 px, and again. */
function fastAndSlow(): Frame[] {
  let x = 0;
  return Array.from({ length: 48 }, (_, index) => {
    const data = new Uint8Array(72 * 12 * 3).fill(90);
    for (let y = 3; y < 9; y++) data.fill(250, (y * 72 + Math.round(x)) * 3, (y * 72 + Math.round(x) + 6) * 3);
    x += Math.floor(index / 12) % 2 === 0 ? 2 : 0.5;
    return { data, width: 72, height: 12, channels: 3, index, timestamp: index / 12, source: 'fast-and-slow' };
  });
}

test('tuples come from the windows that move most: kept windows move more than windows at large', async (t) => {
  const frames = fastAndSlow();
  const sample = (topFraction: number) =>
    firstValueFrom(from(frames).pipe(sampleFrameOrder({ rng: new Rng(2) }, { topFraction, stride: 1 }), toArray()));
  // Motion between the tuple's outer frames b and d (inputs 0 and 2 in every tuple kind).
  const motion = (samples: Sample[]) => {
    const moves = samples.map((s) => {
      const [b, , d] = s.inputs.map((x) => ({ ...frames[0]!, data: Uint8Array.from(x, (v) => Math.round(v * 255)) }));
      return motionScore([b!, d!]);
    });
    return moves.reduce((x, y) => x + y, 0) / moves.length;
  };
  const [kept, all] = [await sample(0.3), await sample(1)];
  const median = all.map((s) => motion([s])).sort((a, b) => a - b)[Math.floor(all.length / 2)]!;
  t.log(
    `${kept.length} of ${all.length} windows kept; mean |b - d| ${motion(kept).toFixed(4)} vs ${motion(all).toFixed(4)}`,
  );
  t.true(kept.length < 0.6 * all.length);
  t.true(motion(kept) > 1.15 * motion(all));
  t.true(
    kept.every((s) => motion([s]) >= median),
    'every kept tuple moves at least as much as the median one',
  );
});

test('bad sampler options are rejected when built', (t) => {
  t.throws(() => sampleFrameOrder({ rng: new Rng(1) }, { gap: 0 }), { instanceOf: OptionError, message: /gap/ });
  t.throws(() => sampleFrameOrder({ rng: new Rng(1) }, { negativeFraction: 1 }), { instanceOf: OptionError });
  t.throws(() => sampleFrameOrder({ rng: new Rng(1) }, { topFraction: 0 }), {
    instanceOf: OptionError,
    message: /topFraction/,
  });
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

test.serial('order verification learns on held-out clips; the broken control (shuffled labels) does not', async (t) => {
  // 128 training clips and 24 held-out ones of 24 frames; frames 1 apart (the fixture's shapes move 2-4 px a frame).
  const SIZE = 20;
  const options = { gap: 1, stride: 1 };
  const sample = (frames: Frame[], seed: number) =>
    firstValueFrom(from(frames).pipe(sampleFrameOrder({ rng: new Rng(seed) }, options), toArray()));
  const pool = await sample(syntheticFrames({ clips: 128, seed: 10, frames: 24, width: SIZE, height: SIZE }), 0);
  const heldOut = await sample(syntheticFrames({ clips: 24, seed: 500, frames: 24, width: SIZE, height: SIZE }), 99);
  const labels = new Rng(5).shuffle(pool.map((s) => s.label));
  const shuffled = pool.map((s, i) => ({ ...s, label: labels[i]! }));
  const train = { steps: 300 };
  const learned = await scoreHeldOut(orderVerification, pool, heldOut, SIZE, train);
  const broken = await scoreHeldOut(orderVerification, shuffled, heldOut, SIZE, train);
  const positives = heldOut.filter((s) => s.label[0] === 1).length / heldOut.length;
  // The baseline is the best of the majority answer and the untrained network (chance is 0.5).
  const baseline = Math.max(positives, 1 - positives, learned.baseline);
  const margin = 0.12;
  t.log(
    `${pool.length} training, ${heldOut.length} held-out tuples (${positives.toFixed(2)} positive): untrained ` +
      `${learned.baseline.toFixed(3)}, trained ${learned.trained.toFixed(3)}, broken control ${broken.trained.toFixed(3)}`,
  );
  t.true(
    learned.trained > baseline + margin,
    `trained ${learned.trained.toFixed(3)} vs baseline ${baseline.toFixed(3)}`,
  );
  t.false(broken.trained > baseline + margin, `broken control ${broken.trained.toFixed(3)} passed`);
});
