// issue 12: inpainting with a context encoder (Pathak et al. 2016): central or random-block masks, L2 on the mask.
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
import { inpainting, inpaintingMask, inpaintingSample, inpaintingTask } from '../../../tasks/image/inpainting.ts';
import { TASKS } from '../../../tasks/registry.ts';
import type { PretextTask } from '../../../tasks/task.ts';
import { dispose, learn } from '../_learn.ts';
import { bars, frameOf } from './_frames.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

const SIZE = 16;

test('inpainting is in the registry, reads single images, and its label carries the mask as a last channel', (t) => {
  t.is(TASKS.inpainting, inpainting);
  t.is(inpainting.reads, 'images');
  t.deepEqual(inpainting.inputShapes([28, 28, 1]), [[28, 28, 1]]);
  t.deepEqual(inpainting.labelShape([28, 28, 1]), [28, 28, 2]);
  t.throws(() => inpaintingTask({ mask: 'ring' as 'central' }), { instanceOf: OptionError, message: /mask/ });
  t.throws(() => inpainting.configure({ itemShape: [1, 8, 3] }), { instanceOf: OptionError });
});

test('the central mask is the centre quarter; random blocks cover at least a quarter, the same for the same seed', (t) => {
  const central = inpaintingMask(8, 12, 'central', new Rng(1));
  for (let y = 0; y < 8; y++)
    for (let x = 0; x < 12; x++) t.is(central[y * 12 + x], y >= 2 && y < 6 && x >= 3 && x < 9 ? 1 : 0);
  const blocks = inpaintingMask(32, 32, 'random-block', new Rng(3));
  const covered = blocks.reduce((a, b) => a + b, 0);
  t.true(covered >= 256 && covered < 512, `${covered}`);
  t.deepEqual(inpaintingMask(32, 32, 'random-block', new Rng(3)), blocks);
  t.notDeepEqual(inpaintingMask(32, 32, 'random-block', new Rng(4)), blocks);
});

test('a sample fills the dropped region with the mean of the kept pixels and labels the clean frame and the mask', (t) => {
  const frame = frameOf(4, 4, 3, (y, x, c) => 10 * (y * 4 + x) + c);
  const { inputs, label } = inpaintingSample(frame, 'central', new Rng(1));
  const kept = [0, 1, 2, 3, 4, 7, 8, 11, 12, 13, 14, 15];
  for (let c = 0; c < 3; c++) {
    const mean = kept.reduce((s, p) => s + frame.data[p * 3 + c]! / 255, 0) / kept.length;
    for (const p of [5, 6, 9, 10]) t.true(Math.abs(inputs[0]![p * 3 + c]! - mean) < 1e-6);
    for (const p of kept) t.is(inputs[0]![p * 3 + c], Math.fround(frame.data[p * 3 + c]! / 255));
  }
  for (let p = 0; p < 16; p++) {
    for (let c = 0; c < 3; c++) t.is(label[p * 4 + c], Math.fround(frame.data[p * 3 + c]! / 255));
    t.is(label[p * 4 + 3], [5, 6, 9, 10].includes(p) ? 1 : 0);
  }
});

test('the loss is a naive squared error over the masked pixels only; what lies outside the mask does not count', (t) => {
  // One 2 x 2 gray frame, mask on the right column.
  const labels = tf.tensor4d([0.5, 0, 0.2, 1, 0.5, 0, 0.8, 1], [1, 2, 2, 2]);
  const guess = tf.tensor4d([0.9, 0.3, 0.1, 0.4], [1, 2, 2, 1]);
  const naive = ((0.3 - 0.2) ** 2 + (0.4 - 0.8) ** 2) / 2;
  t.true(Math.abs(inpainting.loss(labels, guess).dataSync()[0]! - naive) < 1e-6);
  const outsideChanged = tf.tensor4d([0, 0.3, 1, 0.4], [1, 2, 2, 1]);
  t.true(Math.abs(inpainting.loss(labels, outsideChanged).dataSync()[0]! - naive) < 1e-6);
  tf.dispose([labels, guess, outsideChanged]);
});

test('forward predicts whole frames, without leaking tensors', (t) => {
  const encoder = buildFrameEncoder({ inputShape: [28, 28, 1], featureSize: 8, width: 4, blocks: 3, seed: 1 });
  const parts = inpainting.build(encoder, new Rng(2));
  const inputs = [tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 1)];
  tf.dispose(inpainting.forward(encoder, parts, inputs, true));
  const before = tf.memory().numTensors;
  const labels = tf.randomUniform([2, 28, 28, 2], 0, 1, 'float32', 2);
  const out = inpainting.forward(encoder, parts, inputs, false);
  t.deepEqual(out.shape, [2, 28, 28, 1]);
  tf.dispose([inpainting.loss(labels, out), inpainting.metric(labels, out), out, labels]);
  t.is(tf.memory().numTensors, before);
  tf.dispose(inputs);
  encoder.dispose();
  parts.head.dispose();
});

/** The same task whose target (in the masked region) is another frame's: the context no longer tells it. */
function withUnrelatedTargets(task: PretextTask<Frame>, others: readonly Frame[]): PretextTask<Frame> {
  return {
    ...task,
    sampler: (context) => {
      const rng = context.rng.fork();
      return pipe(
        task.sampler(context),
        map((sample) => {
          const other = others[rng.int(others.length)]!;
          const label = Float32Array.from(sample.label);
          for (let p = 0; p < other.width * other.height; p++)
            for (let c = 0; c < 3; c++) label[p * 4 + c] = other.data[p * 3 + c]! / 255;
          return { ...sample, label };
        }),
      );
    },
  };
}

// The metric is the fraction of the masked pixels' variance explained, against the per-pixel mean of each batch of
// 16 (0 is the mean image). The frames' bars cross the whole frame, so the centre follows from the border. Held
// out: 64 other frames with central masks. The run and its broken control (targets from other frames) train on the
// same 128 frames with the same schedule; the broken one can only learn the mean image (about 0 or below). When
// written: central masks 0.691, random-block masks 0.506 (scored on central masks), broken control -0.100.
const MARGIN = 0.3;
const STEPS = 150;
let heldOut: Promise<Sample[][]> | undefined;

async function explained(task: PretextTask<Frame>): Promise<number> {
  const learned = await learn(task, bars(128, SIZE, 7), SIZE, { steps: STEPS, batchSize: 16 });
  heldOut ??= firstValueFrom(
    from(bars(64, SIZE, 900)).pipe(inpainting.sampler({ rng: new Rng(1) }), bufferCount(16), toArray()),
  );
  const { accuracy } = await metricOverBatches(
    inpainting,
    learned.encoder,
    { head: learned.result.heads.inpainting! },
    await heldOut,
    [SIZE, SIZE, 3],
  );
  dispose(learned);
  return accuracy;
}

test.serial('the context encoder fills the centre of held-out frames well beyond the mean image', async (t) => {
  const trained = await explained(inpainting);
  t.log(`held-out explained variance of the masked centre (64 frames): inpainting ${trained.toFixed(3)}, mean image 0`);
  t.true(trained > MARGIN, `inpainting ${trained.toFixed(3)}`);
});

test.serial('random-block masks train too: held-out centres filled beyond the mean image', async (t) => {
  const trained = await explained(inpaintingTask({ mask: 'random-block' }));
  t.log(`held-out explained variance of the masked centre (64 frames): random blocks ${trained.toFixed(3)}`);
  t.true(trained > MARGIN, `random blocks ${trained.toFixed(3)}`);
});

test.serial('broken control: the same run with targets from other frames explains nothing held out', async (t) => {
  const broken = await explained(withUnrelatedTargets(inpainting, bars(128, SIZE, 11)));
  t.log(`held-out explained variance of the masked centre (64 frames): unrelated targets ${broken.toFixed(3)}`);
  t.true(broken < MARGIN, `unrelated targets ${broken.toFixed(3)}`);
});
