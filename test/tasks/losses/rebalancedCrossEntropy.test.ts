// issue 12: colorization's class-rebalanced cross-entropy over locations, against a naive reference.
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../../core/rng.ts';
import { locationAccuracy, rebalancedCrossEntropy } from '../../../tasks/losses/rebalancedCrossEntropy.ts';

function naive(labels: number[][][], logits: number[][][], weights?: number[]): number {
  let sum = 0;
  let count = 0;
  labels.forEach((rows, b) =>
    rows.forEach((target, c) => {
      const z = logits[b]![c]!;
      const logSum = Math.log(z.reduce((s, v) => s + Math.exp(v), 0));
      const ce = -target.reduce((s, p, q) => s + p * (z[q]! - logSum), 0);
      const mode = target.indexOf(Math.max(...target));
      sum += (weights ? weights[mode]! : 1) * ce;
      count++;
    }),
  );
  return sum / count;
}

test('the loss is the mean over locations of the target-mode weight times the cross-entropy', (t) => {
  const rng = new Rng(1);
  const [batch, cells, classes] = [3, 4, 5];
  const labels = Array.from({ length: batch }, () =>
    Array.from({ length: cells }, () => {
      const raw = Array.from({ length: classes }, () => rng.next() ** 3);
      const total = raw.reduce((s, v) => s + v, 0);
      return raw.map((v) => v / total);
    }),
  );
  const logits = Array.from({ length: batch }, () =>
    Array.from({ length: cells }, () => Array.from({ length: classes }, () => 4 * rng.next() - 2)),
  );
  const weights = [0.2, 1, 3, 0.5, 2];
  const [l, z] = [tf.tensor3d(labels), tf.tensor3d(logits)];
  t.true(Math.abs(rebalancedCrossEntropy(l, z, weights).dataSync()[0]! - naive(labels, logits, weights)) < 1e-5);
  t.true(Math.abs(rebalancedCrossEntropy(l, z).dataSync()[0]! - naive(labels, logits)) < 1e-5);
  const modes = labels.flat().map((p) => p.indexOf(Math.max(...p)));
  const argmax = logits.flat().map((p) => p.indexOf(Math.max(...p)));
  const accuracy = modes.filter((m, i) => m === argmax[i]).length / modes.length;
  t.true(Math.abs(locationAccuracy(l, z).dataSync()[0]! - accuracy) < 1e-6);
  tf.dispose([l, z]);
});
