import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';
import { mlpHead } from '../../models/heads.ts';

test('mlpHead stacks the blocks with their units, activations and bias', (t) => {
  const head = mlpHead(
    'h',
    12,
    [
      { units: 8, activation: 'relu' },
      { units: 3, useBias: false },
    ],
    new Rng(1),
  );
  t.deepEqual(head.outputs[0]!.shape, [null, 3]);
  t.deepEqual(
    head.getWeights().map((w) => w.shape),
    [[12, 8], [8], [8, 3]],
  );
  const out = head.predict(tf.ones([2, 12])) as tf.Tensor;
  t.deepEqual(out.shape, [2, 3]);
  tf.dispose([out]);
  head.dispose();
});

test('mlpHead is seeded by one draw of the generator: the same state gives the same weights', (t) => {
  const blocks = [{ units: 5, activation: 'relu' as const }, { units: 2 }];
  const [a, b, c] = [new Rng(7), new Rng(7), new Rng(8)].map((rng) => mlpHead('h', 4, blocks, rng));
  const values = (m: tf.LayersModel) => m.getWeights().map((w) => Array.from(w.dataSync()));
  t.deepEqual(values(a), values(b));
  t.notDeepEqual(values(a), values(c));
  const rng = new Rng(7);
  rng.int(2 ** 31);
  const drawnOnce = new Rng(7);
  mlpHead('h', 4, blocks, drawnOnce);
  t.is(drawnOnce.state, rng.state);
  [a, b, c].forEach((m) => m.dispose());
});

test('mlpHead refuses empty specs and bad sizes', (t) => {
  t.throws(() => mlpHead('h', 4, [], new Rng(1)), { instanceOf: OptionError });
  t.throws(() => mlpHead('h', 0, [{ units: 1 }], new Rng(1)), { instanceOf: OptionError });
  t.throws(() => mlpHead('h', 4, [{ units: 1.5 }], new Rng(1)), { instanceOf: OptionError, message: /units/ });
});
