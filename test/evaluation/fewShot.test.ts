// issue 12: N-way K-shot episodes with a prototype classifier (few-shot with rotation as an auxiliary loss).
import test from 'ava';
import { OptionError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';
import { fewShotEpisodes } from '../../evaluation/fewShot.ts';

/** 8 classes of 40 items, 16-d: class c is a unit direction c plus noise of standard deviation `noise`. */
function clusters(noise: number, seed = 1): { features: Float32Array[]; labels: number[] } {
  const rng = new Rng(seed);
  const features: Float32Array[] = [];
  const labels: number[] = [];
  for (let i = 0; i < 320; i++) {
    const label = i % 8;
    const x = Float32Array.from({ length: 16 }, () => rng.normal() * noise);
    x[label]! += 1;
    features.push(x);
    labels.push(label);
  }
  return { features, labels };
}

test('prototypes of features that carry the class score far above chance, more with more shots', (t) => {
  const { features, labels } = clusters(0.35);
  for (const metric of ['cosine', 'euclidean'] as const) {
    const one = fewShotEpisodes(features, labels, { ways: 5, shots: 1, episodes: 200, metric });
    const five = fewShotEpisodes(features, labels, { ways: 5, shots: 5, episodes: 200, metric });
    t.log(metric, one.accuracy.toFixed(3), five.accuracy.toFixed(3));
    t.is(one.chance, 0.2);
    t.true(one.accuracy > 0.6, `${metric} 1-shot ${one.accuracy}`);
    t.true(five.accuracy > one.accuracy + 0.1 && five.accuracy > 0.8, `${metric} 5-shot ${five.accuracy}`);
    t.true(one.ci95 > 0 && one.ci95 < 0.05);
  }
});

test('broken control: with the labels shuffled, episodes score chance', (t) => {
  const { features, labels } = clusters(0.35);
  const shuffled = new Rng(5).shuffle([...labels]);
  const result = fewShotEpisodes(features, shuffled, { ways: 5, shots: 5, episodes: 300 });
  t.log(result.accuracy.toFixed(3));
  // Chance 0.2; the control must stay within 0.05 of it (the CI half-width is about 0.01).
  t.true(Math.abs(result.accuracy - 0.2) < 0.05, `${result.accuracy}`);
});

test('the 95% interval is 1.96 standard deviations of the episode accuracies over sqrt(episodes)', (t) => {
  const { features, labels } = clusters(1.0);
  const a = fewShotEpisodes(features, labels, { ways: 2, shots: 1, queries: 1, episodes: 400, seed: 2 });
  // Each episode scores 0, 0.5 or 1; the interval shrinks as 1/sqrt(episodes).
  const b = fewShotEpisodes(features, labels, { ways: 2, shots: 1, queries: 1, episodes: 100, seed: 2 });
  t.true(Math.abs(a.ci95 / b.ci95 - 0.5) < 0.15, `${a.ci95} vs ${b.ci95}`);
  t.deepEqual(
    fewShotEpisodes(features, labels, { episodes: 20, seed: 7 }),
    fewShotEpisodes(features, labels, { episodes: 20, seed: 7 }),
  );
});

test('too few classes or items for an episode is one OptionError naming the flag', (t) => {
  const { features, labels } = clusters(0.35);
  t.throws(() => fewShotEpisodes(features, labels, { ways: 9 }), { instanceOf: OptionError, message: /--ways/ });
  t.throws(() => fewShotEpisodes(features, labels, { shots: 30, queries: 15 }), {
    instanceOf: OptionError,
    message: /at most 0/,
  });
  t.throws(() => fewShotEpisodes(features, labels, { episodes: 0 }), {
    instanceOf: OptionError,
    message: /--episodes/,
  });
});
