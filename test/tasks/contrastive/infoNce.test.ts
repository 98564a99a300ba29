import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../../core/rng.ts';
import { contrastiveAccuracy, infoNce, infoNceFromLogits, l2Normalize } from '../../../tasks/losses/infoNce.ts';

function randomMatrix(rng: Rng, rows: number, cols: number): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => rng.normal()));
}

/** The loss written out with plain numbers: mean over rows of -log softmax(row)[target]. */
function naiveInfoNce(logits: number[][], targets: number[]): number {
  const terms = logits.map((row, i) => {
    const max = Math.max(...row);
    const logZ = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    return logZ - row[targets[i]!]!;
  });
  return terms.reduce((a, b) => a + b, 0) / terms.length;
}

const norm = (v: number[]): number[] => {
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return v.map((x) => x / n);
};

test('infoNceFromLogits matches a naive softmax cross-entropy', (t) => {
  const rng = new Rng(1);
  const logits = randomMatrix(rng, 5, 7).map((r) => r.map((v) => 3 * v));
  const targets = [0, 6, 3, 3, 1];
  const loss = infoNceFromLogits(tf.tensor2d(logits), tf.tensor1d(targets, 'int32'));
  t.true(Math.abs(loss.dataSync()[0]! - naiveInfoNce(logits, targets)) < 1e-4);
});

test('infoNce of paired embeddings matches cosine similarities over the temperature with diagonal targets', (t) => {
  const rng = new Rng(2);
  const [q, k] = [randomMatrix(rng, 6, 4), randomMatrix(rng, 6, 4)];
  const logits = q.map((a) => k.map((b) => norm(a).reduce((s, x, j) => s + x * norm(b)[j]!, 0) / 0.5));
  const loss = infoNce(tf.tensor2d(q), tf.tensor2d(k), 0.5);
  t.true(Math.abs(loss.dataSync()[0]! - naiveInfoNce(logits, [0, 1, 2, 3, 4, 5])) < 1e-4);
});

test('a perfect score matrix gives a near-zero loss and accuracy 1', (t) => {
  const logits = tf.tensor2d([
    [20, 0, 0],
    [0, 20, 0],
    [0, 0, 20],
  ]);
  const targets = tf.tensor1d([0, 1, 2], 'int32');
  t.true(infoNceFromLogits(logits, targets).dataSync()[0]! < 1e-6);
  t.is(contrastiveAccuracy(logits, targets).dataSync()[0], 1);
  t.true(Math.abs(contrastiveAccuracy(logits, tf.tensor1d([0, 2, 1], 'int32')).dataSync()[0]! - 1 / 3) < 1e-6);
});

test('l2Normalize gives unit rows and leaves zero rows finite', (t) => {
  const out = l2Normalize(
    tf.tensor2d([
      [3, 4],
      [0, 0],
    ]),
  ).arraySync();
  t.deepEqual(
    out[0]!.map((v) => Math.round(v * 1e5) / 1e5),
    [0.6, 0.8],
  );
  t.deepEqual(out[1], [0, 0]);
});

test('the losses leak no tensors', (t) => {
  const logits = tf.tensor2d([
    [1, 2],
    [3, 4],
  ]);
  const targets = tf.tensor1d([1, 0], 'int32');
  const before = tf.memory().numTensors;
  tf.dispose([infoNceFromLogits(logits, targets), contrastiveAccuracy(logits, targets), infoNce(logits, logits)]);
  t.is(tf.memory().numTensors, before);
  tf.dispose([logits, targets]);
});
