import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../core/rng.ts';
import { OptionError } from '../../core/errors.ts';
import { selectBackend } from '../../models/backend.ts';
import { buildFrameEncoder } from '../../models/frameEncoder.ts';
import {
  chooseLayer,
  featureModel,
  formatLayerSpec,
  layerCandidates,
  parseLayerSpec,
} from '../../evaluation/featureLayer.ts';
import { embed, type LabelledItems } from '../../evaluation/linearProbe.ts';
import { evaluateEncoder } from '../../evaluation/evaluateEncoder.ts';
import { splitLabelled } from '../../evaluation/splitLabelled.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

const encoder = () => buildFrameEncoder({ inputShape: [16, 16, 1], seed: 1 });

test.serial('a layer spec reads the output, a flattened block or a globally averaged one', (t) => {
  const model = encoder();
  const items = [new Float32Array(256).fill(0.5), new Float32Array(256).fill(0.1)];
  const before = tf.memory().numTensors;
  const widths = ['output', 'relu1', 'relu1:pool', 'relu2:pool'].map((spec) => {
    const x = embed(featureModel(model, parseLayerSpec(model, spec)), items);
    const width = x.shape[1];
    x.dispose();
    return width;
  });
  // relu1 is [4, 4, 32] on a 16x16 input: 512 flattened, 32 pooled; relu2 [2, 2, 64] pooled is 64.
  t.deepEqual(widths, [64, 512, 32, 64]);
  t.is(tf.memory().numTensors, before, 'no tensor leaks');
  // Pooling is the mean over height and width of the block's map.
  const [map, pooled] = ['relu1', 'relu1:pool'].map((spec) =>
    embed(featureModel(model, parseLayerSpec(model, spec)), items.slice(0, 1)),
  );
  const mean = tf.tidy(() => tf.mean(tf.reshape(map!, [16, 32]), 0));
  t.true(tf.tidy(() => tf.max(tf.abs(tf.sub(mean, tf.reshape(pooled!, [32]))))).dataSync()[0]! < 1e-5);
  tf.dispose([map!, pooled!, mean]);
  model.dispose();
});

test.serial('a bad layer spec is one OptionError naming --layer and what to give', (t) => {
  const model = encoder();
  for (const spec of ['conv9', 'features:pool', 'output:pool']) {
    const error = t.throws(() => parseLayerSpec(model, spec), { instanceOf: OptionError });
    t.regex(error.message, /--layer/);
    t.false(error.message.includes('\n'), error.message);
  }
  t.is(formatLayerSpec(parseLayerSpec(model, 'relu0:pool')), 'relu0:pool');
  model.dispose();
});

test.serial('best tries each block pooled, narrow blocks flattened, and the output', (t) => {
  const model = buildFrameEncoder({ inputShape: [28, 28, 1], seed: 1 });
  // relu0 is [14, 14, 16] = 3136 values: too wide to try flattened; relu1 1568 and relu2 1024 are tried as they are.
  t.deepEqual(layerCandidates(model).map(formatLayerSpec), [
    'relu0:pool',
    'relu1:pool',
    'relu1',
    'relu2:pool',
    'relu2',
    'output',
  ]);
  model.dispose();
});

/** 16x16 images whose class (0-3) is which quadrant holds a bright square, over dim noise. */
function quadrants(count: number, seed: number): LabelledItems {
  const rng = new Rng(seed);
  const out: LabelledItems = { items: [], labels: [] };
  for (let i = 0; i < count; i++) {
    const label = i % 4;
    const x = Float32Array.from({ length: 256 }, () => rng.next() * 0.3);
    const [top, left] = [(label >> 1) * 8 + 2, (label & 1) * 8 + 2];
    for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) x[(top + r) * 16 + left + c] = 1;
    out.items.push(x);
    out.labels.push(label);
  }
  return out;
}

test.serial(
  'chooseLayer picks on held-out training labels and passes over a block that cannot tell the classes',
  (t) => {
    const model = encoder();
    const { train: fit, test: validation } = splitLabelled(quadrants(160, 1), 0.25, 0);
    const before = tf.memory().numTensors;
    const choice = chooseLayer(model, fit, validation);
    t.is(tf.memory().numTensors, before, 'no tensor leaks');
    t.log(JSON.stringify(choice));
    // The first block's global average discards where the square is (its 3x3 receptive field sees no border), so
    // it stays near chance (0.25): the choice must pass over it. Deeper blocks see the padded border and tell
    // quadrants apart even pooled; ties go to the shallower candidate.
    t.true(choice.scores['relu0:pool']! < 0.6, JSON.stringify(choice.scores));
    t.not(choice.layer, 'relu0:pool');
    t.true(choice.scores[choice.layer]! >= 0.9, JSON.stringify(choice.scores));
    t.is(choice.scores[choice.layer], Math.max(...Object.values(choice.scores)));
    model.dispose();
  },
);

test.serial('evaluateEncoder with layer best names the block chosen and reads it in every encoder', async (t) => {
  const model = encoder();
  const { train, test: held } = splitLabelled(quadrants(160, 2), 0.25, 0);
  const before = tf.memory().numTensors;
  const report = await evaluateEncoder(model, train, held, {
    layer: 'best',
    draws: 1,
    labelsPerClass: 4,
    training: { epochs: 2 },
    fewLabelSteps: 5,
  });
  t.is(tf.memory().numTensors, before, 'no tensor leaks');
  t.truthy(report.layerChoice);
  t.is(report.layer, report.layerChoice!.layer);
  t.true(Object.keys(report.layerChoice!.scores).includes(report.layer));
  t.regex(report.layerChoice!.criterion, /held-out training labels/);
  model.dispose();
});
