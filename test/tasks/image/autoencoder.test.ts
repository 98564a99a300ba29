// issue 12: the denoising autoencoder, the baseline of the image-context family.
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { bufferCount, firstValueFrom, from, map, pipe, toArray } from 'rxjs';
import { OptionError } from '../../../core/errors.ts';
import { Rng } from '../../../core/rng.ts';
import { metricOverBatches } from '../../../evaluation/pretextMetrics.ts';
import { selectBackend } from '../../../models/backend.ts';
import { buildFrameEncoder } from '../../../models/frameEncoder.ts';
import type { Frame } from '../../../pipeline/frame.ts';
import type { Sample } from '../../../pipeline/sample.ts';
import { autoencoder, autoencoderTask, corrupt } from '../../../tasks/image/autoencoder.ts';
import { TASKS } from '../../../tasks/registry.ts';
import type { PretextTask } from '../../../tasks/task.ts';
import { dispose, learn } from '../_learn.ts';
import { bars } from './_frames.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

const SIZE = 16;

test('autoencoder is in the registry and reads single images', (t) => {
  t.is(TASKS.autoencoder, autoencoder);
  t.is(autoencoder.reads, 'images');
  t.is(autoencoder.family, 'image-context');
  t.deepEqual(autoencoder.inputShapes([28, 28, 1]), [[28, 28, 1]]);
  t.deepEqual(autoencoder.labelShape([28, 28, 1]), [28, 28, 1]);
});

test('masking noise zeroes whole pixels at about the given rate; gaussian noise stays in [0, 1]; none is the input', (t) => {
  const rng = new Rng(1);
  const pixels = Float32Array.from({ length: 3 * 4000 }, () => 0.2 + 0.6 * rng.next());
  const masked = corrupt(pixels, 3, { noise: 'mask', level: 0.25 }, new Rng(2));
  let zeroed = 0;
  for (let p = 0; p < 4000; p++) {
    const [a, b, c] = [masked[3 * p], masked[3 * p + 1], masked[3 * p + 2]];
    if (a === 0) {
      zeroed++;
      t.true(b === 0 && c === 0);
    } else t.deepEqual([a, b, c], [pixels[3 * p], pixels[3 * p + 1], pixels[3 * p + 2]]);
  }
  t.true(Math.abs(zeroed / 4000 - 0.25) < 0.03, `${zeroed}`);
  const noisy = corrupt(pixels, 3, { noise: 'gaussian', level: 0.5 }, new Rng(2));
  t.true(noisy.every((v) => v >= 0 && v <= 1));
  t.notDeepEqual(noisy, pixels);
  t.deepEqual(corrupt(pixels, 3, { noise: 'none', level: 0 }, new Rng(2)), pixels);
  t.deepEqual(corrupt(pixels, 3, { noise: 'mask', level: 0.25 }, new Rng(2)), masked, 'same seed, same noise');
});

test('bad options are refused naming them', (t) => {
  t.throws(() => autoencoderTask({ noise: 'salt' as 'mask' }), { instanceOf: OptionError, message: /noise/ });
  t.throws(() => autoencoderTask({ level: 1 }), { instanceOf: OptionError, message: /level/ });
});

test('the decoder gives back frames of the encoder input size (cropped when not a power of 2), without leaks', (t) => {
  for (const shape of [
    [28, 28, 1],
    [20, 36, 3],
  ] as [number, number, number][]) {
    const encoder = buildFrameEncoder({ inputShape: shape, featureSize: 8, width: 4, blocks: 3, seed: 1 });
    const parts = autoencoder.build(encoder, new Rng(2));
    const inputs = [tf.randomUniform([2, ...shape], 0, 1, 'float32', 1)];
    const out = autoencoder.forward(encoder, parts, inputs, true);
    t.deepEqual(out.shape, [2, ...shape]);
    const values = out.dataSync();
    t.true(
      values.every((v) => v >= 0 && v <= 1),
      'sigmoid pixels',
    );
    tf.dispose(out);
    const before = tf.memory().numTensors;
    for (const training of [true, false]) tf.dispose(autoencoder.forward(encoder, parts, inputs, training));
    const labels = tf.randomUniform([2, ...shape], 0, 1, 'float32', 3);
    const predictions = autoencoder.forward(encoder, parts, inputs, false);
    tf.dispose([autoencoder.loss(labels, predictions), autoencoder.metric(labels, predictions), predictions, labels]);
    t.is(tf.memory().numTensors, before);
    tf.dispose(inputs);
    encoder.dispose();
    parts.head.dispose();
  }
});

test('loss is a naive mean squared error; the metric is 1 for an exact copy and 0 for the per-pixel batch mean', (t) => {
  const labels = tf.tensor4d([0, 1, 0.5, 0.5, 1, 0, 0.5, 1], [2, 2, 2, 1]);
  const guess = tf.tensor4d([0.1, 0.9, 0.5, 0.2, 1, 0, 0.4, 1], [2, 2, 2, 1]);
  const naive = [0.01, 0.01, 0, 0.09, 0, 0, 0.01, 0].reduce((a, b) => a + b, 0) / 8;
  t.true(Math.abs(autoencoder.loss(labels, guess).dataSync()[0]! - naive) < 1e-6);
  t.true(Math.abs(autoencoder.metric(labels, labels).dataSync()[0]! - 1) < 1e-6);
  const meanImage = tf.tidy(() => tf.tile(tf.mean(labels, 0, true), [2, 1, 1, 1]));
  t.true(Math.abs(autoencoder.metric(labels, meanImage).dataSync()[0]!) < 1e-5);
  tf.dispose([labels, guess, meanImage]);
});

/** The same task whose target is another image's clean frame: the input no longer tells the target. */
function withUnrelatedTargets(task: PretextTask<Frame>, others: readonly Frame[]): PretextTask<Frame> {
  return {
    ...task,
    sampler: (context) => {
      const rng = context.rng.fork();
      return pipe(
        task.sampler(context),
        map((sample) => ({
          ...sample,
          label: Float32Array.from(others[rng.int(others.length)]!.data, (v) => v / 255),
        })),
      );
    },
  };
}

// The metric is the fraction of the clean frames' variance explained, against the per-pixel mean of each batch of
// 16: 0 is the mean image. Held out: 64 other frames, noised by the sampler. The run and its broken control (targets
// from other frames, so a copy of the input is useless) train on the same 128 frames with the same schedule; the
// broken one can learn only the mean image (about 0 or below), the trained one the bars (0.659 when written; the broken control -0.095).
const MARGIN = 0.3;
const STEPS = 150;
let heldOut: Promise<Sample[][]> | undefined;

async function explained(task: PretextTask<Frame>): Promise<number> {
  const learned = await learn(task, bars(128, SIZE, 7), SIZE, { steps: STEPS, batchSize: 16 });
  heldOut ??= firstValueFrom(
    from(bars(64, SIZE, 900)).pipe(autoencoder.sampler({ rng: new Rng(1) }), bufferCount(16), toArray()),
  );
  const { accuracy } = await metricOverBatches(
    autoencoder,
    learned.encoder,
    { head: learned.result.heads.autoencoder! },
    await heldOut,
    [SIZE, SIZE, 3],
  );
  dispose(learned);
  return accuracy;
}

test.serial('the denoising autoencoder reconstructs held-out clean frames well beyond the mean image', async (t) => {
  const trained = await explained(autoencoder);
  t.log(`held-out explained variance (64 frames): autoencoder ${trained.toFixed(3)}, mean image 0`);
  t.true(trained > MARGIN, `autoencoder ${trained.toFixed(3)}`);
});

test.serial('broken control: the same run with targets unrelated to the input explains nothing held out', async (t) => {
  const broken = await explained(withUnrelatedTargets(autoencoder, bars(128, SIZE, 11)));
  t.log(`held-out explained variance (64 frames): unrelated targets ${broken.toFixed(3)}, mean image 0`);
  t.true(broken < MARGIN, `unrelated targets ${broken.toFixed(3)}`);
});
