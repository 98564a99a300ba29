import test from 'ava';
import { Rng } from '../../core/rng.ts';
import { rocAuc } from '../../evaluation/rocAuc.ts';

/** The definition itself, O(p * n): each (positive, negative) pair scores 1 if ordered, 1/2 if tied. */
function naiveAuc(positives: number[], negatives: number[]): number {
  let sum = 0;
  for (const p of positives) for (const n of negatives) sum += p > n ? 1 : p === n ? 0.5 : 0;
  return sum / (positives.length * negatives.length);
}

test('rocAuc gives 1 for a perfect ranking, 0 for a reversed one and 0.5 when all scores tie', (t) => {
  t.is(rocAuc([3, 4, 5], [0, 1, 2]), 1);
  t.is(rocAuc([0, 1], [2, 3, 4]), 0);
  t.is(rocAuc([1, 1, 1], [1, 1]), 0.5);
});

test('rocAuc counts a tie between a positive and a negative as half', (t) => {
  t.is(rocAuc([0.9, 0.8], [0.1, 0.8]), 0.875);
});

const againstReference = test.macro({
  exec(t, levels: number, seed: number) {
    const rng = new Rng(seed);
    // Scores from a few levels only, so that many fall in ties within and across the two sides.
    const draw = (n: number, shift: number) => Array.from({ length: n }, () => rng.int(levels) + shift);
    const positives = draw(5 + rng.int(40), 1);
    const negatives = draw(5 + rng.int(40), 0);
    t.true(Math.abs(rocAuc(positives, negatives) - naiveAuc(positives, negatives)) < 1e-12);
  },
  title: (_, levels: number, seed: number) =>
    `rocAuc equals the pairwise definition (${levels} score levels, seed ${seed})`,
});
for (const [levels, seed] of [
  [2, 1],
  [3, 2],
  [10, 3],
  [1000, 4],
] as const)
  test(againstReference, levels, seed);

test('rocAuc is NaN without positives or negatives, so an empty side never passes a threshold', (t) => {
  t.true(Number.isNaN(rocAuc([], [1, 2])));
  t.true(Number.isNaN(rocAuc([1], [])));
});
