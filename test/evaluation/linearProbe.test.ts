import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../core/rng.ts';
import { selectBackend } from '../../models/backend.ts';
import { accuracy } from '../../evaluation/accuracy.ts';
import { knnClassify } from '../../evaluation/knnClassify.ts';
import { fitLinearClassifier } from '../../evaluation/linearClassifier.ts';
import { embed, linearProbe, type LabelledItems } from '../../evaluation/linearProbe.ts';
import { splitLabelled } from '../../evaluation/splitLabelled.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

/** `count` items of `dim` values: class c has mean +2 on coordinate c, unit Gaussian noise elsewhere. */
function blobs(count: number, classes: number, dim: number, seed: number, separation = 2): LabelledItems {
  const rng = new Rng(seed);
  const items: Float32Array[] = [];
  const labels: number[] = [];
  for (let i = 0; i < count; i++) {
    const label = i % classes;
    const x = Float32Array.from({ length: dim }, () => rng.normal());
    x[label]! += separation;
    items.push(x);
    labels.push(label);
  }
  return { items, labels };
}

/** A model that passes its input through unchanged: probing it probes the raw items. */
function identity(dim: number): tf.LayersModel {
  const input = tf.input({ shape: [dim] });
  return tf.model({
    inputs: input,
    outputs: tf.layers.activation({ activation: 'linear' }).apply(input) as tf.SymbolicTensor,
  });
}

/** Cosine kNN written out: every similarity, a full sort, votes counted by hand. */
function naiveKnn(train: number[][], trainY: number[], test: number[][], k: number, temperature?: number): number[] {
  const cos = (a: number[], b: number[]) => {
    const dot = a.reduce((s, v, i) => s + v * b[i]!, 0);
    const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    return dot / (norm(a) * norm(b) + 1e-8);
  };
  return test.map((q) => {
    const ranked = train.map((x, i) => ({ s: cos(q, x), y: trainY[i]! })).sort((a, b) => b.s - a.s);
    const votes = new Map<number, number>();
    for (const { s, y } of ranked.slice(0, k))
      votes.set(y, (votes.get(y) ?? 0) + (temperature ? Math.exp(s / temperature) : 1));
    return [...votes.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0];
  });
}

const knnAgainstReference = test.macro({
  exec(t, k: number, temperature?: number) {
    const rng = new Rng(k * 7 + (temperature ? 1 : 0));
    const rows = (n: number) => Array.from({ length: n }, () => Array.from({ length: 6 }, () => rng.normal()));
    const train = rows(60);
    const trainY = train.map(() => rng.int(4));
    const testRows = rows(25);
    const trainX = tf.tensor2d(train);
    const testX = tf.tensor2d(testRows);
    const before = tf.memory().numTensors;
    // chunk 7 makes the classifier cross several chunks of test rows, the last one short.
    const predicted = knnClassify(trainX, trainY, testX, { k, temperature, chunk: 7 });
    t.is(tf.memory().numTensors, before);
    t.deepEqual(predicted, naiveKnn(train, trainY, testRows, k, temperature));
    tf.dispose([trainX, testX]);
  },
  title: (_, k: number, temperature?: number) =>
    `knnClassify predicts what a naive cosine kNN predicts (k=${k}, ${temperature ? `weighted, T=${temperature}` : 'majority vote'})`,
});
test(knnAgainstReference, 1);
test(knnAgainstReference, 5);
test(knnAgainstReference, 20, 0.07);
test(knnAgainstReference, 200, 0.07);

test('the weighted kNN lets a few close neighbours outvote many far ones', (t) => {
  // Query [1, 0]: two neighbours of class 1 at cosine 1, three of class 0 at cosine 0.6.
  const trainX = tf.tensor2d([
    [1, 0],
    [1, 0],
    [0.6, 0.8],
    [0.6, 0.8],
    [0.6, 0.8],
  ]);
  const testX = tf.tensor2d([[1, 0]]);
  const labels = [1, 1, 0, 0, 0];
  t.deepEqual(knnClassify(trainX, labels, testX, { k: 5 }), [0]);
  t.deepEqual(knnClassify(trainX, labels, testX, { k: 5, temperature: 0.07 }), [1]);
  tf.dispose([trainX, testX]);
});

test('fitLinearClassifier separates linearly separable classes and leaks no tensor', (t) => {
  const data = blobs(200, 4, 8, 1, 6);
  const x = tf.tensor2d(data.items.map((v) => Array.from(v)));
  const before = tf.memory().numTensors;
  const classifier = fitLinearClassifier(x, data.labels, 4, { iterations: 100 });
  t.true(accuracy(classifier.predict(x), data.labels) > 0.98);
  classifier.dispose();
  t.is(tf.memory().numTensors, before);
  x.dispose();
});

test('linearProbe scores held-out items well above chance on separable data, a finite accuracy in [0, 1]', (t) => {
  const encoder = identity(8);
  const { train, test: held } = splitLabelled(blobs(240, 4, 8, 2), 0.3, 0);
  const before = tf.memory().numTensors;
  const result = linearProbe(encoder, train, held, { iterations: 150 });
  t.is(tf.memory().numTensors, before);
  for (const value of [result.accuracy, result.knnAccuracy]) t.true(Number.isFinite(value) && value >= 0 && value <= 1);
  // Chance 0.25; the Bayes rate of these blobs (means 2 apart on one axis each) is about 0.8.
  t.true(result.accuracy > 0.65, `linear ${result.accuracy}`);
  t.true(result.knnAccuracy > 0.5, `kNN ${result.knnAccuracy}`);
  t.is(result.trainCount + result.testCount, 240);
});

test('broken control: linearProbe with shuffled training labels scores near chance', (t) => {
  const { train, test: held } = splitLabelled(blobs(240, 4, 8, 2), 0.3, 0);
  const shuffled = { ...train, labels: new Rng(9).shuffle([...train.labels]) };
  const result = linearProbe(identity(8), shuffled, held, { iterations: 150 });
  t.true(result.accuracy < 0.4, `linear ${result.accuracy} (chance 0.25)`);
  t.true(result.knnAccuracy < 0.4, `kNN ${result.knnAccuracy} (chance 0.25)`);
});

test('embed computes features in batches and flattens outputs of higher rank', (t) => {
  const input = tf.input({ shape: [4] });
  const reshaped = tf.layers.reshape({ targetShape: [2, 2] }).apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: reshaped });
  const items = Array.from({ length: 5 }, (_, i) => Float32Array.from([i, i + 1, i + 2, i + 3]));
  const features = embed(model, items, 2);
  t.deepEqual(features.shape, [5, 4]);
  t.deepEqual(Array.from(features.dataSync().slice(16)), [4, 5, 6, 7]);
  features.dispose();
});
