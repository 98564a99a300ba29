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
