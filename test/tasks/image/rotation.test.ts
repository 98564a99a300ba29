// issue 12: rotation (RotNet), all four rotations of each image in one batch, on images and video frames.
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
import { ROTATIONS, rotateSquare, rotation, rotationSample } from '../../../tasks/image/rotation.ts';
import { TASKS, tasksReading } from '../../../tasks/registry.ts';
import type { PretextTask } from '../../../tasks/task.ts';
import { dispose, learn } from '../_learn.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

const SIZE = 16;

/** A frame whose pixel (y, x, c) is `value(y, x, c)`. */
function frameOf(
  height: number,
  width: number,
  channels: 1 | 3,
  value: (y: number, x: number, c: number) => number,
): Frame {
  const data = new Uint8Array(height * width * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++) data[(y * width + x) * channels + c] = value(y, x, c);
  return { data, width, height, channels, index: 0, timestamp: 0, source: 'test' };
}

test('rotation reads single images, so image runs and video runs both take it', (t) => {
  t.is(TASKS.rotation.reads, 'images');
  t.is(TASKS.rotation.family, 'image-context');
  t.true(tasksReading('images').includes('rotation'));
  t.true(tasksReading('frames', 'views', 'images').includes('rotation'));
});

test('a quarter turn is counter-clockwise, as numpy rot90, and four of them give the image back', (t) => {
  // [[1, 2], [3, 4]] turned once is [[2, 4], [1, 3]].
  const layout = { width: 2, channels: 1, top: 0, left: 0, size: 2 };
  t.deepEqual([...rotateSquare(Float32Array.of(1, 2, 3, 4), new Float32Array(4), layout, 1)], [2, 4, 1, 3]);
  t.deepEqual([...rotateSquare(Float32Array.of(1, 2, 3, 4), new Float32Array(4), layout, 2)], [4, 3, 2, 1]);
  t.deepEqual([...rotateSquare(Float32Array.of(1, 2, 3, 4), new Float32Array(4), layout, 3)], [3, 1, 4, 2]);
  const rng = new Rng(3);
  const pixels = Float32Array.from({ length: 5 * 5 * 3 }, () => rng.next());
  let turned: Float32Array = pixels;
  for (let k = 0; k < 4; k++)
    turned = rotateSquare(turned, new Float32Array(turned.length), { ...layout, width: 5, channels: 3, size: 5 }, 1);
  t.deepEqual(turned, pixels);
});

test("each rotation matches a naive reference: tf's transpose and reverse", (t) => {
  const rng = new Rng(5);
  const frame = frameOf(6, 6, 3, () => rng.int(256));
  const sample = rotationSample(frame);
  const image = tf.tensor3d(
    Float32Array.from(frame.data, (v) => v / 255),
    [6, 6, 3],
  );
  let reference = image;
  for (let k = 0; k < ROTATIONS; k++) {
    const got = sample.inputs[0]!.subarray(k * 108, (k + 1) * 108);
    t.deepEqual([...got], [...reference.dataSync()], `rotation ${k}`);
    // rot90 counter-clockwise: transpose, then flip the rows.
    reference = tf.reverse(tf.transpose(reference, [1, 0, 2]), 0);
  }
  tf.dispose([image, reference]);
});

test('a sample is the four rotations in one input, labelled 0..3 in order', (t) => {
  const sample = rotationSample(frameOf(SIZE, SIZE, 1, (y) => y));
  t.is(sample.inputs.length, 1);
  t.is(sample.inputs[0]!.length, ROTATIONS * SIZE * SIZE);
  t.deepEqual([...sample.label], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
  t.deepEqual(rotation.inputShapes([SIZE, SIZE, 1]), [[4, SIZE, SIZE, 1]]);
  t.deepEqual(rotation.labelShape([SIZE, SIZE, 1]), [4, 4]);
});

test('a non-square frame gives its centre square rotated, with the same black bars in every rotation', (t) => {
  // 4 high x 8 wide: the centre square is columns 2..5; the sides are white.
  const frame = frameOf(4, 8, 1, (y, x) => (x < 2 || x > 5 ? 255 : 10 * y + x));
  const stack = rotationSample(frame).inputs[0]!;
  for (let k = 0; k < ROTATIONS; k++) {
    const image = stack.subarray(k * 32, (k + 1) * 32);
    for (let y = 0; y < 4; y++) {
      for (const x of [0, 1, 6, 7]) t.is(image[y * 8 + x], 0, `rotation ${k} bar pixel (${y}, ${x})`);
    }
  }
  // Rotation 2 (180 degrees): the square's top-left holds its bottom-right, (3, 5) -> 35.
  t.is(Math.round(stack[2 * 32 + 2]! * 255), 35);
});

test('frames too small to rotate are refused when the task is made', (t) => {
  t.throws(() => rotation.configure({ itemShape: [1, 8, 3] }), {
    instanceOf: OptionError,
    message: /--width\/--height/,
  });
  t.is(rotation.configure({ itemShape: [8, 8, 3] }), rotation);
});

test('forward runs the encoder on all 4B rotated images and returns [B, 4, 4] logits, without leaking tensors', (t) => {
  const encoder = buildFrameEncoder({ inputShape: [8, 8, 3], featureSize: 6, width: 4, blocks: 2, seed: 1 });
  const parts = rotation.build(encoder, new Rng(2));
  const inputs = [tf.randomUniform([3, 4, 8, 8, 3], 0, 1, 'float32', 1)];
  const logits = rotation.forward(encoder, parts, inputs, true);
  t.deepEqual(logits.shape, [3, 4, 4]);
  // Row k of image b is the encoder and head on rotation k alone (inference mode, so batch norm is per image too).
  const inference = rotation.forward(encoder, parts, inputs, false);
  const alone = tf.tidy(
    () => parts.head.apply(encoder.apply(tf.slice(inputs[0]!, [1, 2], [1, 1]).reshape([1, 8, 8, 3]))) as tf.Tensor,
  );
  const row = tf.tidy(() => tf.slice(inference, [1, 2, 0], [1, 1, 4]).reshape([1, 4]));
  t.true(tf.tidy(() => tf.max(tf.abs(tf.sub(row, alone)))).dataSync()[0]! < 1e-5);
  tf.dispose([logits, inference, alone, row]);
  // Burnt in above (batch norm makes its state on first use): further steps hold no more tensors.
  const before = tf.memory().numTensors;
  for (const training of [true, false, true]) tf.dispose(rotation.forward(encoder, parts, inputs, training));
  t.is(tf.memory().numTensors, before);
  tf.dispose(inputs);
  encoder.dispose();
  parts.head.dispose();
});

test('loss and accuracy are a naive softmax cross-entropy and arg-max count over every rotated image', (t) => {
  const logits = [
    [
      [2, 0, -1, 0],
      [0, 1, 0, 0],
      [0, 0, 0, 3],
      [0.5, 0, 0, 1],
    ],
  ];
  const labels = [[0, 1, 2, 3].map((k) => [0, 1, 2, 3].map((j) => (j === k ? 1 : 0)))];
  const naive =
    logits[0]!.reduce((sum, row, k) => sum + Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[k]!, 0) / 4;
  const [l, y] = [tf.tensor3d(labels), tf.tensor3d(logits)];
  t.true(Math.abs(rotation.loss(l, y).dataSync()[0]! - naive) < 1e-5);
  t.is(rotation.metric(l, y).dataSync()[0], 0.75);
  tf.dispose([l, y]);
});

/**
 * Synthetic scenes with an up and a down, as photographs have: a bright sky of a random colour that darkens
 * downwards, dark ground of a random colour and height at the bottom, a coloured square somewhere in between,
 * noise everywhere.
 */
function scenes(count: number, seed: number): Frame[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, i) => {
    const ground = SIZE - 3 - rng.int(5);
    const sky = [0, 1, 2].map(() => 150 + rng.int(106));
    const earth = [0, 1, 2].map(() => rng.int(110));
    const [sy, sx, colour] = [2 + rng.int(ground - 6), rng.int(SIZE - 4), [rng.int(256), rng.int(256), rng.int(256)]];
    const frame = frameOf(SIZE, SIZE, 3, (y, x, c) => {
      const noise = rng.int(40) - 20;
      if (y >= sy && y < sy + 3 && x >= sx && x < sx + 4) return colour[c]!;
      const base = y >= ground ? earth[c]! : sky[c]! - 5 * y;
      return Math.max(0, Math.min(255, base + noise));
    });
    return { ...frame, index: i, source: `scene-${seed}-${i}` };
  });
}

/** The same task with each rotated image's label replaced by a random rotation: the pixels no longer tell it. */
function withShuffledLabels(task: PretextTask<Frame>): PretextTask<Frame> {
  return {
    ...task,
    sampler: (context) => {
      const rng = context.rng.fork();
      return pipe(
        task.sampler(context),
        map((sample) => {
          const label = new Float32Array(ROTATIONS * ROTATIONS);
          for (let k = 0; k < ROTATIONS; k++) label[k * ROTATIONS + rng.int(ROTATIONS)] = 1;
          return { ...sample, label };
        }),
      );
    },
  };
}

// Chance is 1/4 (the four rotations of every image come equally often). The run and its broken control train on
// the same 96 scenes with the same schedule, and are scored on 64 other scenes (256 rotated images). Any fixed
// network gives alike scenes of one rotation alike predictions, so untrained or broken ones land in lumps above
// chance (random init 0.398, shuffled labels 0.301 when written); the margin is set above those, and the trained
// run is at 1.000.
const CHANCE = 0.25;
const MARGIN = 0.25;
const STEPS = 120;
let heldOut: Promise<Sample[][]> | undefined;

async function heldOutAccuracy(encoder: tf.LayersModel, head: tf.LayersModel): Promise<number> {
  heldOut ??= firstValueFrom(
    from(scenes(64, 900)).pipe(rotation.sampler({ rng: new Rng(1) }), bufferCount(16), toArray()),
  );
  const { accuracy } = await metricOverBatches(rotation, encoder, { head }, await heldOut, [SIZE, SIZE, 3]);
  return accuracy;
}

async function trainedAccuracy(task: PretextTask<Frame>): Promise<number> {
  const learned = await learn(task, scenes(96, 7), SIZE, { steps: STEPS, batchSize: 8 });
  const accuracy = await heldOutAccuracy(learned.encoder, learned.result.heads.rotation!);
  dispose(learned);
  return accuracy;
}

test.serial(
  'rotation learns to tell the four rotations of held-out scenes, well above chance and random init',
  async (t) => {
    const fresh = buildFrameEncoder({ inputShape: [SIZE, SIZE, 3], featureSize: 32, width: 8, blocks: 2, seed: 1 });
    const freshHead = rotation.build(fresh, new Rng(4)).head;
    const randomInit = await heldOutAccuracy(fresh, freshHead);
    fresh.dispose();
    freshHead.dispose();
    const trained = await trainedAccuracy(rotation);
    t.log(
      `held-out accuracy (n=256 rotated images): rotation ${trained.toFixed(3)}, random init ${randomInit.toFixed(3)}, chance ${CHANCE}`,
    );
    t.true(trained > CHANCE + MARGIN, `rotation ${trained.toFixed(3)}`);
    t.true(randomInit < CHANCE + MARGIN, `random init ${randomInit.toFixed(3)}`);
  },
);

test.serial(
  'broken control: the same run with shuffled rotation labels stays near chance on held-out scenes',
  async (t) => {
    const shuffled = await trainedAccuracy(withShuffledLabels(rotation));
    t.log(`held-out accuracy (n=256 rotated images): shuffled labels ${shuffled.toFixed(3)}, chance ${CHANCE}`);
    t.true(shuffled < CHANCE + MARGIN, `shuffled labels ${shuffled.toFixed(3)}`);
  },
);
