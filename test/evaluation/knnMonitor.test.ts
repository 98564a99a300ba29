import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { knnMonitor } from '../../evaluation/knnMonitor.ts';
import { Rng } from '../../core/rng.ts';

test.before(async () => {
  await tf.setBackend('cpu');
});

/** 400 items of 4 classes in 8 dimensions: a class-dependent mean plus noise, so a kNN can read the class. */
function labelledSet(seed: number) {
  const rng = new Rng(seed);
  const labels = Array.from({ length: 400 }, (_, i) => i % 4);
  const items = labels.map((label) => Float32Array.from({ length: 8 }, (_, d) => (d === label ? 2 : 0) + rng.normal()));
  return { items, labels };
}

// The identity "encoder": the monitor sees the items themselves.
const identity = () => tf.sequential({ layers: [tf.layers.activation({ activation: 'linear', inputShape: [8] })] });

test('the kNN monitor reads classes that the features carry, on queries held out of its memory', async (t) => {
  const encoder = identity();
  const monitor = knnMonitor(labelledSet(1), { every: 10 });
  const score = await monitor.measure(encoder);
  t.is(monitor.every, 10);
  // Chance 0.25; a kNN on these features scores about 0.8.
  t.true(score > 0.6, `kNN accuracy ${score}`);

  // Broken control: the same items with their labels shuffled carry no class the features show.
  const broken = labelledSet(1);
  new Rng(9).shuffle(broken.labels);
  const control = await knnMonitor(broken).measure(encoder);
  t.true(control < 0.4, `shuffled labels ${control}`);
  t.log(`kNN monitor ${score.toFixed(3)}, shuffled labels ${control.toFixed(3)} (chance 0.25)`);
  const before = tf.memory().numTensors;
  await monitor.measure(encoder);
  t.is(tf.memory().numTensors, before, 'no tensor left behind');
  encoder.dispose();
});
