// issue 13: local Deep InfoMax (global vector against the feature map's positions; JSD or InfoNCE estimator).
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { bufferCount, firstValueFrom, from, toArray } from 'rxjs';
import { OptionError } from '../../../core/errors.ts';
import { Rng } from '../../../core/rng.ts';
import { metricOverBatches } from '../../../evaluation/pretextMetrics.ts';
import { selectBackend } from '../../../models/backend.ts';
import { buildFrameEncoder } from '../../../models/frameEncoder.ts';
import type { Frame } from '../../../pipeline/frame.ts';
import type { Sample } from '../../../pipeline/sample.ts';
import { createDimTask, dim, dimAccuracy, dimInfonce, dimLayer, dimLoss } from '../../../tasks/contrastive/dim.ts';
import { TASKS } from '../../../tasks/registry.ts';
import type { PretextTask, TaskParts } from '../../../tasks/task.ts';
import { dispose, learn } from '../_learn.ts';
import { scenes, SIZE } from './_viewPairs.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

const encoderOf = () =>
  buildFrameEncoder({ inputShape: [SIZE, SIZE, 3], featureSize: 32, width: 8, blocks: 2, seed: 1 });

test('dim and dim-infonce are in the registry, read single images and check their options', (t) => {
  t.is(TASKS.dim.name, 'dim');
  t.is(TASKS['dim-infonce'].name, 'dim-infonce');
  t.is(TASKS.dim.reads, 'images');
  t.deepEqual(Object.keys(dim.monitors ?? {}), ['embeddingStd']);
  t.throws(() => createDimTask({ estimator: 'mine' as 'jsd' }), { instanceOf: OptionError });
  t.throws(() => createDimTask({ units: 0 }), { instanceOf: OptionError });
  t.throws(() => dim.configure({ itemShape: [4, 4, 3] }), { instanceOf: OptionError, message: /8 x 8/ });
  const encoder = encoderOf();
  t.is(dimLayer(encoder), 'relu0');
  t.is(dimLayer(encoder, 'relu1'), 'relu1');
  t.throws(() => dimLayer(encoder, 'features'), { instanceOf: OptionError, message: /relu0, relu1/ });
  encoder.dispose();
});

test('embeddings are [batch, 1 + positions, units]; the losses and metric match plain references', (t) => {
  const encoder = encoderOf();
  const parts = dim.build(encoder, new Rng(2));
  const images = tf.randomUniform([3, SIZE, SIZE, 3], 0, 1, 'float32', 5);
  const embeddings = dim.forward(encoder, parts, [images], false);
  t.deepEqual(embeddings.shape, [3, 1 + 8 * 8, 64]);
  tf.dispose([images, embeddings]);
  parts.head.dispose();
  parts.extra!.local!.dispose();
  encoder.dispose();

  const rng = new Rng(3);
  const [batch, positions] = [3, 2];
  const s = Array.from({ length: batch }, () =>
    Array.from({ length: batch }, () => Array.from({ length: positions }, () => rng.normal())),
  );
  const scores = tf.tensor3d(s);
  const softplus = (x: number) => Math.log1p(Math.exp(x));
  let [positive, negative, nce, correct] = [0, 0, 0, 0];
  for (let i = 0; i < batch; i++)
    for (let n = 0; n < positions; n++) {
      positive += softplus(-s[i]![i]![n]!) / (batch * positions);
      let others = 0;
      for (let j = 0; j < batch; j++) {
        if (j !== i) negative += softplus(s[i]![j]![n]!) / (batch * (batch - 1) * positions);
        if (j !== i) for (let m = 0; m < positions; m++) others += Math.exp(s[i]![j]![m]!);
      }
      const own = Math.exp(s[i]![i]![n]!);
      nce += -Math.log(own / (own + others)) / (batch * positions);
      const best = s[i]!.map((row) => row[n]!).indexOf(Math.max(...s[i]!.map((row) => row[n]!)));
      correct += best === i ? 1 / (batch * positions) : 0;
    }
  t.true(Math.abs(dimLoss(scores, 'jsd').dataSync()[0]! - (positive + negative)) < 1e-5);
  t.true(Math.abs(dimLoss(scores, 'infonce').dataSync()[0]! - nce) < 1e-5);
  t.true(Math.abs(dimAccuracy(scores).dataSync()[0]! - correct) < 1e-6);
  scores.dispose();
});

/**
 * The broken control: the same task, but each step pairs every image's global embedding with the local features
 * of another image of the batch (a shift by a random 1..B-1 each step), so positives are other items and no
 * pairing repeats.
 */
function withWrongLocals(task: PretextTask<Frame>): PretextTask<Frame> {
  const rng = new Rng(17);
  return {
    ...task,
    forward(encoder, parts, inputs, training) {
      const embeddings = task.forward(encoder, parts, inputs, training);
      if (!training) return embeddings;
      return tf.tidy(() => {
        const batch = embeddings.shape[0]!;
        const shift = 1 + rng.int(batch - 1);
        const globals = tf.slice(embeddings, [0, 0, 0], [-1, 1, -1]);
        const all = tf.slice(embeddings, [0, 1, 0], [-1, -1, -1]);
        // Row i takes image (i + shift) mod B's local features (slices: wasm has no gradient for gather).
        const locals = tf.concat([
          tf.slice(all, [shift, 0, 0], [-1, -1, -1]),
          tf.slice(all, [0, 0, 0], [shift, -1, -1]),
        ]);
        embeddings.dispose();
        return tf.concat([globals, locals], 1);
      });
    },
  };
}

// Held-out: 64 scenes never trained on, in batches of 16, and the task's metric through the trained encoder and
// discriminator: how often an image's global embedding scores its own local features above those of the 15 other
// images at the same position (chance 1/16). Random init is a fresh encoder and discriminator; the broken control
// trains the same way on wrong pairs. When written: see the log lines (README, "Contrastive tasks").
const STEPS = 300;
const MARGIN = 0.2;
let heldOut: Promise<Sample[][]> | undefined;

async function heldOutMatching(task: PretextTask<Frame>, encoder: tf.LayersModel, parts: TaskParts): Promise<number> {
  heldOut ??= firstValueFrom(from(scenes(64, 900)).pipe(dim.sampler({ rng: new Rng(1) }), bufferCount(16), toArray()));
  const { accuracy } = await metricOverBatches(task, encoder, parts, await heldOut, [SIZE, SIZE, 3]);
  return accuracy;
}

async function trained(task: PretextTask<Frame>, name: string): Promise<{ accuracy: number; std: number[] }> {
  const std: number[] = [];
  const learned = await learn(task, scenes(128, 7), SIZE, {
    steps: STEPS,
    batchSize: 16,
    onStep: (m) => std.push(m.tasks[name]!.embeddingStd!),
  });
  const parts = learned.result.parts[name]!;
  const accuracy = await heldOutMatching(task, learned.encoder, parts);
  parts.extra!.local!.dispose();
  dispose(learned);
  return { accuracy, std };
}

let randomInit: number | undefined;
async function randomInitMatching(): Promise<number> {
  if (randomInit !== undefined) return randomInit;
  const fresh = encoderOf();
  const parts = dim.build(fresh, new Rng(4));
  randomInit = await heldOutMatching(dim, fresh, parts);
  parts.head.dispose();
  parts.extra!.local!.dispose();
  fresh.dispose();
  return randomInit;
}

const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

for (const task of [dim, dimInfonce]) {
  test.serial(
    `${task.name} learns to match held-out images' global and local features, above random init`,
    async (t) => {
      const base = await randomInitMatching();
      const { accuracy, std } = await trained(task, task.name);
      t.log(
        `held-out global-local matching (64 unseen scenes, batches of 16, chance 1/16): ${task.name} ${accuracy.toFixed(3)}, random init ${base.toFixed(3)}; embeddingStd first 20 steps ${meanOf(std.slice(0, 20)).toFixed(3)}, last 20 ${meanOf(std.slice(-20)).toFixed(3)}`,
      );
      t.true(accuracy > base + MARGIN, `${task.name} ${accuracy.toFixed(3)} vs random init ${base.toFixed(3)}`);
    },
  );
}

for (const task of [dim, dimInfonce]) {
  test.serial(`broken control: the same ${task.name} run with local features from other images does not`, async (t) => {
    const base = await randomInitMatching();
    const { accuracy } = await trained(withWrongLocals(task), task.name);
    t.log(
      `held-out global-local matching: ${task.name} on wrong pairs ${accuracy.toFixed(3)}, random init ${base.toFixed(3)}`,
    );
    t.true(accuracy < base + MARGIN, `wrong pairs ${accuracy.toFixed(3)} vs random init ${base.toFixed(3)}`);
  });
}
