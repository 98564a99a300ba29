import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../core/rng.ts';
import { buildFrameEncoder } from '../../models/frameEncoder.ts';
import { embedItems, nearestNeighbours, umapLayout } from '../../recipes/report/embeddingMap.ts';
import { curvesOf, readMetrics, smooth, type MetricsLine } from '../../recipes/report/metricsSeries.ts';
import { writeReport } from '../../recipes/report/writeReport.ts';
import { runCli } from '../cli/_runCli.ts';
import { from } from 'rxjs';
import { WordVocab } from '../../text/tokenizers/WordVocab.ts';
import { buildTextEncoder, TokenEmbedding } from '../../models/textEncoder.ts';
import { wordNeighbours } from '../../recipes/report/textViews.ts';

const line = (step: number, extra: Record<string, unknown> = {}): MetricsLine => ({
  step,
  loss: 1 / step,
  tasks: { order: { loss: 1 / step, accuracy: 0.5 + step / 100, embeddingStd: 0.1 } },
  samplesPerSecond: 70 + step,
  elapsedSeconds: step / 2,
  ...extra,
});

test('smooth is the debiased moving average, checked against a naive loop', (t) => {
  const values = [3, 1, 4, 1, 5, 9, 2, 6];
  const naive = values.map((_, k) => {
    let num = 0;
    let den = 0;
    for (let j = 0; j <= k; j++) {
      num += 0.6 ** (k - j) * values[j]!;
      den += 0.6 ** (k - j);
    }
    return num / den;
  });
  smooth(values, 0.6).forEach((v, k) => t.true(Math.abs(v - naive[k]!) < 1e-12));
  t.deepEqual(smooth(values, 0), values);
});

test('curvesOf gives the total, samples/s, each task figure, and lr and knnAccuracy on the steps that log them', (t) => {
  const lines = [1, 2, 3, 4].map((s) => line(s, { lr: 1e-3 / s, ...(s % 2 === 0 ? { knnAccuracy: s / 10 } : {}) }));
  const curves = curvesOf(lines);
  const titles = curves.map((c) => c.title);
  t.deepEqual(titles.sort(), [
    'knnAccuracy',
    'loss (total)',
    'lr',
    'order / accuracy',
    'order / embeddingStd',
    'order / loss',
    'samples/s',
  ]);
  const knn = curves.find((c) => c.title === 'knnAccuracy')!;
  t.deepEqual(
    knn.points.map((p) => [p.step, p.value]),
    [
      [2, 0.2],
      [4, 0.4],
    ],
  );
  t.is(curves.find((c) => c.title === 'order / loss')!.group, 'order');
});

test('readMetrics skips a line cut short by a kill', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-metrics-'));
  await writeFile(join(dir, 'metrics.jsonl'), JSON.stringify(line(1)) + '\n' + JSON.stringify(line(2)).slice(0, 20));
  t.deepEqual(
    (await readMetrics(join(dir, 'metrics.jsonl'))).map((l) => l.step),
    [1],
  );
  await rm(dir, { recursive: true });
});

test('nearestNeighbours matches a brute-force sort by cosine similarity', (t) => {
  const rng = new Rng(3);
  const embeddings = Array.from({ length: 30 }, () => Float32Array.from({ length: 5 }, () => rng.next() - 0.5));
  const cos = (a: Float32Array, b: Float32Array) =>
    a.reduce((s, v, i) => s + v * b[i]!, 0) / Math.hypot(...a) / Math.hypot(...b);
  const near = nearestNeighbours(embeddings, 8);
  embeddings.forEach((e, i) => {
    const brute = embeddings
      .map((o, j) => [cos(e, o), j] as const)
      .filter(([, j]) => j !== i)
      .sort((x, y) => y[0] - x[0])
      .slice(0, 8)
      .map(([, j]) => j);
    t.deepEqual(near[i]!.indices, brute);
  });
});

test('umapLayout is seeded: the same seed gives the same map', (t) => {
  const rng = new Rng(1);
  const embeddings = Array.from({ length: 40 }, (_, i) =>
    Float32Array.from({ length: 6 }, (_, d) => (d === i % 3 ? 1 : 0) + 0.1 * rng.next()),
  );
  t.deepEqual(umapLayout(embeddings, 7, 30), umapLayout(embeddings, 7, 30));
});

test('embedItems leaks no tensor and returns one embedding an item', (t) => {
  const encoder = buildFrameEncoder({ inputShape: [8, 8, 3], featureSize: 4, width: 2, blocks: 1 });
  const items = Array.from({ length: 5 }, (_, k) => new Float32Array(8 * 8 * 3).fill(k / 5));
  const mapItems = {
    shape: [8, 8, 3] as [number, number, number],
    items,
    labels: [],
    classes: [],
    captions: [],
    colourBy: '',
    from: '',
  };
  embedItems(encoder, mapItems, 2);
  const before = tf.memory().numTensors;
  const out = embedItems(encoder, mapItems, 2);
  t.is(tf.memory().numTensors, before);
  t.is(out.length, 5);
  t.is(out[0]!.length, 4);
  encoder.dispose();
});

test('writeReport refuses a folder that holds no run, naming it and what it needs', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-norun-'));
  const error = await t.throwsAsync(writeReport({ run: dir }));
  t.regex(error.message, new RegExp(`run folder ${dir}: holds no run\\.json and no metrics\\.jsonl`));
  await rm(dir, { recursive: true });
});

test('report --curves-only --json: the charts of a run folder, lr included, in one JSON line', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-report-cli-'));
  await writeFile(
    join(dir, 'run.json'),
    JSON.stringify({ format: { width: 8, height: 8 }, tasks: [{ name: 'order' }] }),
  );
  await writeFile(
    join(dir, 'metrics.jsonl'),
    [1, 2, 3].map((s) => JSON.stringify(line(s, { lr: 0.001 }))).join('\n') + '\n',
  );
  const result = await runCli(['report', dir, '--curves-only', '--json']);
  t.is(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as { path: string; charts: number };
  t.is(summary.path, join(dir, 'report.html'));
  t.is(summary.charts, 6);
  t.regex(await readFile(summary.path, 'utf8'), /data-title="lr"/);
  await rm(dir, { recursive: true });
});

test('wordNeighbours: the nearest whole words of common words in the token embedding table, by cosine', async (t) => {
  const vocab = await WordVocab.train(from(['the king and the queen , the man and the woman , a day and a night']));
  const encoder = buildTextEncoder({ vocabSize: vocab.vocabSize, maxLength: 4, embeddingSize: 3, hiddenSize: 2 });
  // Rows set by hand: king ~ queen, man ~ woman, day ~ night; every other token far from all three pairs.
  const rows = Array.from({ length: vocab.vocabSize }, (_, id) => {
    const token = vocab.idToToken(id);
    if (token === 'king' || token === 'queen') return [1, 0.1 * (token === 'king' ? 1 : 2), 0];
    if (token === 'man' || token === 'woman') return [0, 1, 0.1 * (token === 'man' ? 1 : 2)];
    if (token === 'day' || token === 'night') return [0.1 * (token === 'day' ? 1 : 2), 0, 1];
    return [-1, -1, -1 + 0.01 * id];
  });
  const layer = encoder.layers.find((l) => l instanceof TokenEmbedding)!;
  const table = tf.tensor2d(rows);
  layer.setWeights([table]);
  table.dispose();
  const near = wordNeighbours(encoder, vocab, ['king', 'woman', 'night', 'unheard'], 1);
  t.deepEqual(
    near.map((w) => [w.word, w.neighbours[0]!.word]),
    [
      ['king', 'queen'],
      ['woman', 'man'],
      ['night', 'day'],
    ],
  );
  t.false(
    near.some((w) => w.neighbours.some((n) => n.word.startsWith('['))),
    'no special tokens',
  );
  encoder.dispose();
});
