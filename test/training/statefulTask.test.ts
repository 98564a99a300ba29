// A toy task with what the contrastive and image-context tasks bring: a trainable part beyond its head (a
// projector, as a second encoder or a decoder would be) and state no gradient trains (a momentum copy of the
// encoder's output layer, a ring queue of past keys and a step counter). The trainer must train the part, update
// the state after each step, and bring both back exactly on resume.
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { from } from 'rxjs';
import { Rng } from '../../core/rng.ts';
import { syntheticFrames } from '../../fixtures/frames.ts';
import { selectBackend } from '../../models/backend.ts';
import { buildFrameEncoder } from '../../models/frameEncoder.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { binaryAccuracy, binaryCrossEntropy } from '../../tasks/losses/binaryCrossEntropy.ts';
import { featureSizeOf, type PretextTask, type TaskParts, type TaskState } from '../../tasks/task.ts';
import { orderVerification, sampleFrameOrder } from '../../tasks/temporal/orderVerification.ts';
import { train, type TrainOptions } from '../../training/trainer.ts';

const SIZE = 24;
const QUEUE = 5;

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));
const frames = syntheticFrames({ clips: 8, seed: 5, frames: 30, width: SIZE, height: SIZE });

/** A ring queue of the mean feature of each step, a momentum (EMA) copy of the encoder's last kernel, a counter. */
function toyState(encoder: tf.LayersModel): TaskState {
  const kernel = () => encoder.getLayer('features').getWeights()[0]!;
  const momentum = tf.variable(kernel().clone(), false);
  const queue = tf.variable(tf.zeros([QUEUE, featureSizeOf(encoder)]), false);
  const steps = tf.variable(tf.scalar(0), false);
  const probe = tf.randomUniform([2, SIZE, SIZE, 3], 0, 1, 'float32', 9);
  return {
    tensors: () => ({ momentum, queue, steps }),
    restore(saved) {
      momentum.assign(saved.momentum!);
      queue.assign(saved.queue!);
      steps.assign(saved.steps! as tf.Scalar);
    },
    afterStep(enc) {
      tf.tidy(() => {
        momentum.assign(tf.add(tf.mul(momentum, 0.9), tf.mul(kernel(), 0.1)));
        const key = tf.mean(enc.predict(probe) as tf.Tensor2D, 0, true); // [1, featureSize]
        const slot = steps.dataSync()[0]! % QUEUE;
        const rows = tf.unstack(queue);
        rows[slot] = key.squeeze([0]);
        queue.assign(tf.stack(rows));
        steps.assign(tf.add(steps, 1));
      });
    },
    dispose() {
      tf.dispose([momentum, queue, steps, probe]);
    },
  };
}

const toyTask: PretextTask<Frame> = {
  ...orderVerification,
  name: 'toy',
  configure() {
    return this;
  },
  sampler: (context) => sampleFrameOrder(context),
  build(encoder, rng) {
    const size = featureSizeOf(encoder);
    const seed = rng.int(2 ** 31);
    const projector = tf.sequential({
      name: 'toy_projector',
      layers: [
        tf.layers.dense({
          inputShape: [size],
          units: size,
          kernelInitializer: tf.initializers.glorotUniform({ seed }),
        }),
      ],
    });
    const head = tf.sequential({
      name: 'toy_head',
      layers: [
        tf.layers.dense({
          inputShape: [3 * size],
          units: 1,
          kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
        }),
      ],
    });
    return { head, extra: { projector }, state: toyState(encoder) };
  },
  forward(encoder, parts, inputs, training) {
    return tf.tidy(() => {
      const projector = parts.extra!.projector!;
      const features = inputs.map((x) => projector.apply(encoder.apply(x, { training }), { training }) as tf.Tensor);
      return parts.head.apply(tf.concat(features, 1), { training }) as tf.Tensor;
    });
  },
  loss: binaryCrossEntropy,
  metric: binaryAccuracy,
};

function options(overrides: Partial<TrainOptions> = {}): TrainOptions {
  return {
    encoder: buildFrameEncoder({ inputShape: [SIZE, SIZE, 3], featureSize: 16, width: 8, blocks: 2, seed: 2 }),
    itemShape: [SIZE, SIZE, 3],
    tasks: [{ task: toyTask, samples: (_e, _v, rng: Rng) => from(frames).pipe(toyTask.sampler({ rng })) }],
    steps: 8,
    batchSize: 8,
    seed: 6,
    ...overrides,
  };
}

/** Every number a run ends with: encoder, head, projector and the state tensors, in a fixed order. */
function snapshot(encoder: tf.LayersModel, parts: TaskParts): Float32Array[] {
  const models = [encoder, parts.head, ...Object.values(parts.extra ?? {})];
  const state = Object.values(parts.state!.tensors());
  return [...models.flatMap((m) => m.getWeights()), ...state].map((w) => w.dataSync() as Float32Array);
}

function maxDifference(a: Float32Array[], b: Float32Array[]): number {
  return Math.max(...a.map((x, i) => Math.max(...x.map((v, j) => Math.abs(v - b[i]![j]!)))));
}

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-stateful-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test.serial('a stateful task with an extra trainable part trains both and updates its state each step', async (t) => {
  const opts = options();
  // The trainer builds the parts from a generator seeded with the run's seed: the same draws give the initial ones.
  const probe = toyTask.build(opts.encoder, new Rng(6));
  const before = probe.extra!.projector!.getWeights()[0]!.dataSync().slice() as Float32Array;
  probe.head.dispose();
  probe.extra!.projector!.dispose();
  probe.state!.dispose();
  const result = await train(opts);
  const parts = result.parts.toy!;
  t.is(parts.state!.tensors().steps!.dataSync()[0], 8, 'afterStep ran once per step');
  const queued = parts.state!.tensors().queue!.abs().sum().dataSync()[0]!;
  t.true(queued > 0, 'the queue holds keys');
  const projector = parts.extra!.projector!.getWeights()[0]!.dataSync() as Float32Array;
  t.true(maxDifference([before], [projector]) > 1e-4, 'the optimizer trained the projector');
  parts.state!.dispose();
  opts.encoder.dispose();
});

test.serial('a resumed stateful run ends with the weights, parts and state of an uninterrupted one', async (t) => {
  const straightDir = await tempDir(t);
  const straight = options({ steps: 8, outDir: straightDir, checkpointEvery: 3 });
  const whole = await train(straight);
  // Past one wrap of the 5-slot queue, so restoring its slots and counter both matter.
  const expected = snapshot(straight.encoder, whole.parts.toy!);

  const resumedDir = await tempDir(t);
  const first = options({ steps: 6, outDir: resumedDir });
  const cut = await train(first);
  cut.parts.toy!.state!.dispose();
  const second = options({ steps: 8, outDir: resumedDir, resume: true });
  const resumed = await train(second);
  t.is(resumed.startStep, 6);
  const actual = snapshot(second.encoder, resumed.parts.toy!);
  t.is(actual.length, expected.length);
  const diff = maxDifference(actual, expected);
  t.true(diff < 1e-5, `max difference of weights and state ${diff}`);
  t.is(resumed.parts.toy!.state!.tensors().steps!.dataSync()[0], 8);

  // Control: the same resume with the state not restored (a fresh queue and counter) must not match.
  const brokenDir = await tempDir(t);
  const brokenFirst = options({ steps: 6, outDir: brokenDir });
  (await train(brokenFirst)).parts.toy!.state!.dispose();
  const forgetful: PretextTask<Frame> = {
    ...toyTask,
    build(encoder, rng) {
      const parts = toyTask.build(encoder, rng);
      const state = parts.state!;
      return { ...parts, state: { ...state, restore: () => {} } };
    },
  };
  const broken = options({
    steps: 8,
    outDir: brokenDir,
    resume: true,
    tasks: [{ task: forgetful, samples: (_e, _v, rng: Rng) => from(frames).pipe(forgetful.sampler({ rng })) }],
  });
  const brokenResult = await train(broken);
  const brokenDiff = maxDifference(snapshot(broken.encoder, brokenResult.parts.toy!), expected);
  t.true(brokenDiff > 1e-3, `without restoring the state the run differs by ${brokenDiff}`);
  for (const r of [whole, resumed, brokenResult]) r.parts.toy!.state!.dispose();
});
