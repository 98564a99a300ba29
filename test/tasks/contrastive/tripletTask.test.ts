import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../../core/rng.ts';
import { tripletAccuracy } from '../../../tasks/losses/triplet.ts';
import { tripletLoss } from '../../../tasks/losses/triplet.ts';

const sq = (a: number[], b: number[]): number => a.reduce((s, x, i) => s + (x - b[i]!) ** 2, 0);

test('tripletLoss and tripletAccuracy match a naive hinge on squared distances', (t) => {
  const rng = new Rng(3);
  const triplets = Array.from({ length: 9 }, () =>
    Array.from({ length: 3 }, () => Array.from({ length: 4 }, () => rng.normal())),
  );
  const margin = 0.5;
  const hinge = triplets.map(([a, p, n]) => Math.max(0, sq(a!, p!) - sq(a!, n!) + margin));
  const right = triplets.filter(([a, p, n]) => sq(a!, p!) < sq(a!, n!)).length;
  const embeddings = tf.tensor3d(triplets);
  t.true(Math.abs(tripletLoss(embeddings, margin).dataSync()[0]! - hinge.reduce((x, y) => x + y) / 9) < 1e-4);
  t.true(Math.abs(tripletAccuracy(embeddings).dataSync()[0]! - right / 9) < 1e-6);
  embeddings.dispose();
});

test('a triplet ranked right by more than the margin costs nothing', (t) => {
  const embeddings = tf.tensor3d([
    [
      [1, 0],
      [1, 0],
      [-1, 0],
    ],
  ]);
  t.is(tripletLoss(embeddings, 0.2).dataSync()[0], 0);
  t.is(tripletAccuracy(embeddings).dataSync()[0], 1);
  embeddings.dispose();
});

test('with k negatives and cosine distance, the loss averages the hinge over every negative', (t) => {
  const rng = new Rng(4);
  const rows = Array.from({ length: 6 }, () => Array.from({ length: 4 }, () => [0, 0, 0].map(() => rng.normal())));
  const cos = (a: number[], b: number[]) =>
    1 - a.reduce((s, v, i) => s + v * b[i]!, 0) / (Math.hypot(...a) * Math.hypot(...b));
  const hinge = rows.flatMap(([a, p, ...negatives]) =>
    negatives.map((n) => Math.max(0, cos(a!, p!) - cos(a!, n) + 0.5)),
  );
  const right = rows.flatMap(([a, p, ...negatives]) =>
    negatives.map((n): number => (cos(a!, p!) < cos(a!, n) ? 1 : 0)),
  );
  const embeddings = tf.tensor3d(rows);
  const loss = tripletLoss(embeddings, 0.5, 'cosine');
  const accuracy = tripletAccuracy(embeddings, 'cosine');
  t.true(Math.abs(loss.dataSync()[0]! - hinge.reduce((x, y) => x + y) / hinge.length) < 1e-5);
  t.true(Math.abs(accuracy.dataSync()[0]! - right.reduce((x, y) => x + y) / right.length) < 1e-6);
  // Squared distance of unit vectors is twice the cosine distance.
  const unit = tf.tidy(() => tf.div(embeddings, tf.norm(embeddings, 'euclidean', 2, true)));
  const squared = tripletLoss(unit, 1);
  const cosine = tripletLoss(unit, 0.5, 'cosine');
  t.true(Math.abs(squared.dataSync()[0]! - 2 * cosine.dataSync()[0]!) < 1e-5);
  tf.dispose([embeddings, loss, accuracy, unit, squared, cosine]);
});
