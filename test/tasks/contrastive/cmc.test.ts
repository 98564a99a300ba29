// issue 13: Contrastive Multiview Coding: L against ab of colour pictures (one encoder each, a memory bank per
// view), and synchronized cameras; refused on gray data rather than faking a view.
import test from 'ava';
import { longSerial } from '../../_long.ts';
import * as tf from '@tensorflow/tfjs';
import { firstValueFrom, from, map, pipe, toArray } from 'rxjs';
import { DataFormatError, OptionError } from '../../../core/errors.ts';
import { Rng } from '../../../core/rng.ts';
import { selectBackend } from '../../../models/backend.ts';
import { buildFrameEncoder } from '../../../models/frameEncoder.ts';
import { labPart } from '../../../models/labChannels.ts';
import type { Frame } from '../../../pipeline/frame.ts';
import { createCmcTask, createCmcViewsTask } from '../../../tasks/contrastive/cmc.ts';
import { MemoryBank, slotOf } from '../../../tasks/contrastive/memoryBank.ts';
import { l2Normalize } from '../../../tasks/losses/infoNce.ts';
import { TASKS } from '../../../tasks/registry.ts';
import type { PretextTask, TaskParts } from '../../../tasks/task.ts';
import { dispose, learn } from '../_learn.ts';
import { scenes, SIZE } from './_viewPairs.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

const encoderOf = () =>
  buildFrameEncoder({ inputShape: [SIZE, SIZE, 3], featureSize: 32, width: 8, blocks: 2, seed: 1 });

test('cmc and cmc-views are in the registry; cmc refuses gray frames with one line saying it does not apply', (t) => {
  t.is(TASKS.cmc.reads, 'images');
  t.is(TASKS['cmc-views'].reads, 'views');
  const error = t.throws(() => TASKS.cmc.configure({ itemShape: [28, 28, 1] }), { instanceOf: OptionError });
  t.regex(error.message, /^--gray .*not applicable to gray data/);
  t.notRegex(error.message, /\n/);
  t.throws(() => createCmcViewsTask({ cameras: 1 }), { instanceOf: OptionError });
});

test('cmc refuses colour frames that are all gray (R = G = B): their ab view would be empty', async (t) => {
  const gray = scenes(64, 5).map((f) => {
    const data = new Uint8Array(f.data.length);
    for (let p = 0; p < data.length; p += 3) data.fill(f.data[p]!, p, p + 3);
    return { ...f, data };
  });
  const task = createCmcTask({ bankSize: 64, indexed: true });
  await t.throwsAsync(firstValueFrom(from(gray).pipe(task.sampler({ rng: new Rng(1) }), toArray())), {
    instanceOf: DataFormatError,
    message: /not applicable/,
  });
});

test('cmc-views refuses one-camera moments (plain --video) naming --views', async (t) => {
  const task = createCmcViewsTask({ bankSize: 64 });
  await t.throwsAsync(
    firstValueFrom(from(scenes(4, 5).map((f) => [f])).pipe(task.sampler({ rng: new Rng(1) }), toArray())),
    { instanceOf: OptionError, message: /^--views .*--tasks cmc/ },
  );
});

test('logits: each view against the other view bank, [batch, pairs, 1 + negatives]; no tensor leaks', (t) => {
  const encoder = encoderOf();
  const task = createCmcTask({ bankSize: 20, indexed: true, negatives: 7, dim: 8 });
  const parts = task.build(encoder, new Rng(3));
  const rgb = tf.randomUniform([4, SIZE, SIZE, 3], 0, 1, 'float32', 2);
  const slots = tf.tensor2d([[0], [1], [2], [3]]);
  tf.dispose(task.forward(encoder, parts, [rgb, slots], false)); // burn in: layers build on their first call
  const before = tf.memory().numTensors;
  const logits = task.forward(encoder, parts, [rgb, slots], false);
  t.deepEqual(logits.shape, [4, 2, 8]);
  const unused = tf.zeros([4, 1]);
  const loss = task.loss(unused, logits);
  t.true(Number.isFinite(loss.dataSync()[0]!));
  tf.dispose([logits, loss, unused]);
  t.is(tf.memory().numTensors, before);
  tf.dispose([rgb, slots]);
  const views = createCmcViewsTask({ bankSize: 20, negatives: 5, dim: 8, cameras: 3 });
  const viewParts = views.build(encoder, new Rng(3));
  t.deepEqual(Object.keys(viewParts.extra!).sort(), [
    'camera1_encoder',
    'camera1_head',
    'camera2_encoder',
    'camera2_head',
  ]);
  const moments = tf.randomUniform([2, 3, SIZE, SIZE, 3], 0, 1, 'float32', 2);
  const viewLogits = views.forward(encoder, viewParts, [moments, tf.tensor2d([[0], [1]])], false);
  t.deepEqual(viewLogits.shape, [2, 6, 6]);
  tf.dispose([moments, viewLogits]);
  for (const p of [parts, viewParts]) {
    p.state!.dispose();
    p.head.dispose();
    Object.values(p.extra!).forEach((m) => m.dispose());
  }
  encoder.dispose();
});

test('memory bank: an unwritten slot positive is the incoming feature, held constant; a written one its memory', (t) => {
  const bank = new MemoryBank({ size: 4, dim: 2, views: 1, negatives: 1, seed: 1 });
  const query = tf.tensor2d([[1, 0]]);
  const incoming = tf.tensor2d([[0.6, 0.8]]);
  const slots = Int32Array.of(2);
  // Unwritten: column 0 is query . incoming / T, and no gradient reaches incoming.
  const before = tf.tidy(() => bank.logits(0, query, slots, 0.5, false, incoming));
  t.true(Math.abs(before.dataSync()[0]! - 0.6 / 0.5) < 1e-5);
  const grad = tf.grad((x: tf.Tensor) =>
    tf.sum(tf.slice(bank.logits(0, query, slots, 0.5, false, x as tf.Tensor2D), [0, 0], [1, 1])),
  )(incoming);
  t.deepEqual(Array.from(grad.dataSync()), [0, 0]);
  // Written ([0, 1]), the memory counts, not incoming.
  bank.hold([tf.tensor2d([[0, 1]])], slots);
  bank.afterStep();
  const after = tf.tidy(() => bank.logits(0, tf.tensor2d([[0, 1]]), slots, 0.5, false, incoming));
  t.true(Math.abs(after.dataSync()[0]! - 1 / 0.5) < 1e-5);
  tf.dispose([query, incoming, before, grad, after]);
  bank.dispose();
});

test('one cmc training step reaches both encoders and both projections', (t) => {
  const encoder = encoderOf();
  const task = createCmcTask({ bankSize: 16, indexed: true, negatives: 7, dim: 8 });
  const parts = task.build(encoder, new Rng(3));
  const rgb = tf.randomUniform([4, SIZE, SIZE, 3], 0, 1, 'float32', 2);
  const slots = tf.tensor2d([[0], [1], [2], [3]]);
  const unused = tf.zeros([4, 1]);
  const models = {
    l_encoder: encoder,
    l_head: parts.head,
    ab_encoder: parts.extra!.ab_encoder!,
    ab_head: parts.extra!.ab_head!,
  };
  const variables = Object.values(models).flatMap((m) => m.trainableWeights.map((w) => w.read() as tf.Variable));
  const { value, grads } = tf.variableGrads(
    () => task.loss(unused, task.forward(encoder, parts, [rgb, slots], true)),
    variables,
  );
  for (const [name, model] of Object.entries(models)) {
    const norm = model.trainableWeights.reduce(
      (sum, w) => sum + tf.tidy(() => tf.sum(tf.abs(grads[(w.read() as tf.Variable).name]!)).dataSync()[0]!),
      0,
    );
    t.true(norm > 0, `no gradient reaches ${name}`);
  }
  parts.state!.afterStep!(encoder, { step: 1, steps: 1, momentumFactor: 1 });
  tf.dispose([value, rgb, slots, unused, ...Object.values(grads)]);
  parts.state!.dispose();
  parts.head.dispose();
  Object.values(parts.extra!).forEach((m) => m.dispose());
  encoder.dispose();
});

/** An RGB colour (0-255) of hue `h` in [0, 1), saturation 0.8 and a value that rises with the hue. */
function linkedColour(h: number): number[] {
  const v = 0.25 + 0.65 * h;
  const s = 0.8;
  const k = (n: number) => (n + h * 6) % 6;
  return [5, 3, 1].map((n) => Math.round(255 * (v - v * s * Math.max(0, Math.min(k(n), 4 - k(n), 1)))));
}
/**
 * Colour scenes whose lightness and chroma share what tells them apart, as natural pictures' do: a background and
 * two boxes, each of a random hue whose brightness rises with the hue (so the L view sees the hues as levels of
 * gray, the ab view as chroma).
 */
function labScenes(count: number, seed: number): Frame[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, index) => {
    const background = linkedColour(rng.next());
    const boxes = [0, 1].map(() => ({
      y: rng.int(SIZE - 6),
      x: rng.int(SIZE - 6),
      h: 4 + rng.int(4),
      w: 4 + rng.int(4),
      colour: linkedColour(rng.next()),
    }));
    const data = new Uint8Array(SIZE * SIZE * 3);
    for (let y = 0; y < SIZE; y++)
      for (let x = 0; x < SIZE; x++)
        for (let c = 0; c < 3; c++) {
          const box = boxes.find((b) => y >= b.y && y < b.y + b.h && x >= b.x && x < b.x + b.w);
          data[(y * SIZE + x) * 3 + c] = box ? box.colour[c]! : background[c]!;
        }
    return { data, width: SIZE, height: SIZE, channels: 3, index, timestamp: 0, source: `lab-${seed}-${index}` };
  });
}

// Held-out: 128 unseen scenes in batches of 32; for each, is the nearest of the batch's other-view embeddings its own
// (chance 1/32)? cmc: L embedding against the ab embeddings; cmc-views: camera 0 against camera 1. Broken control:
// every sample gets the slot of a random other scene, drawn afresh each time, so the other view's "positive" memory
// is another scene's. Bar: random init + 0.1 for the trained run, under it for the control.
const MARGIN = 0.1;
const HELD_OUT = 128;

/** A second camera of a scene: mirrored, darker, with a colour cast, as another viewpoint and sensor. */
function secondCamera(frame: Frame): Frame {
  const data = new Uint8Array(frame.data.length);
  for (let y = 0; y < SIZE; y++)
    for (let x = 0; x < SIZE; x++)
      for (let c = 0; c < 3; c++)
        data[(y * SIZE + x) * 3 + c] = Math.round(
          frame.data[(y * SIZE + (SIZE - 1 - x)) * 3 + c]! * [0.7, 0.8, 0.9][c]!,
        );
  return { ...frame, data, source: `${frame.source}-cam1` };
}

/**
 * The task with each sample given the slot of a random training item (from `slots`, the items' own slots), drawn
 * afresh each time: once the items' slots are written, the other view's "positive" memory is another item's.
 */
function withRandomSlots<R>(task: PretextTask<R>, slots: readonly number[]): PretextTask<R> {
  return {
    ...task,
    sampler: (context) => {
      const rng = context.rng.fork();
      return pipe(
        task.sampler(context),
        map((s) => ({ ...s, inputs: [s.inputs[0]!, Float32Array.of(slots[rng.int(slots.length)]!)] })),
      );
    },
  };
}

/** Embeddings of both views `[n, d]` each, by the encoders and heads of `parts`. */
function embedViews(kind: 'lab' | 'cameras', encoder: tf.LayersModel, parts: TaskParts, frames: Frame[]) {
  return tf.tidy(() => {
    const batch = (fs: Frame[]) =>
      tf.tensor4d(Float32Array.from(fs.flatMap((f) => Array.from(f.data, (v) => v / 255))), [fs.length, SIZE, SIZE, 3]);
    const embed = (net: tf.LayersModel, head: tf.LayersModel, x: tf.Tensor) =>
      l2Normalize(head.apply(net.apply(x)) as tf.Tensor2D);
    if (kind === 'lab') {
      const rgb = batch(frames);
      return [
        embed(encoder, parts.head, labPart(rgb, 'l3')),
        embed(parts.extra!.ab_encoder!, parts.extra!.ab_head!, labPart(rgb, 'ab')),
      ];
    }
    return [
      embed(encoder, parts.head, batch(frames)),
      embed(parts.extra!.camera1_encoder!, parts.extra!.camera1_head!, batch(frames.map(secondCamera))),
    ];
  });
}

function crossViewRetrieval(kind: 'lab' | 'cameras', encoder: tf.LayersModel, parts: TaskParts): number {
  const heldOut = kind === 'lab' ? labScenes(HELD_OUT, 900) : scenes(HELD_OUT, 900);
  let hits = 0;
  for (let b = 0; b < HELD_OUT; b += 32) {
    const [a, other] = embedViews(kind, encoder, parts, heldOut.slice(b, b + 32));
    const best = tf.tidy(() => tf.argMax(tf.matMul(a!, other!, false, true), 1));
    (best.dataSync() as Int32Array).forEach((j, i) => (hits += j === i ? 1 : 0));
    tf.dispose([a!, other!, best]);
  }
  return hits / HELD_OUT;
}

function freeParts(parts: TaskParts): void {
  parts.state?.dispose();
  Object.values(parts.extra ?? {}).forEach((m) => m.dispose());
}

async function trained<R>(kind: 'lab' | 'cameras', task: PretextTask<R>, items: R[], steps: number): Promise<number> {
  const learned = await learn(task, items, SIZE, { steps, batchSize: 16 });
  const name = task.name;
  const parts = { ...learned.result.parts[name]!, head: learned.result.heads[name]! };
  const accuracy = crossViewRetrieval(kind, learned.encoder, parts);
  freeParts(learned.result.parts[name]!);
  dispose(learned);
  return accuracy;
}

function atRandomInit(kind: 'lab' | 'cameras', task: PretextTask<never>): number {
  const fresh = encoderOf();
  const parts = task.build(fresh, new Rng(4));
  const accuracy = crossViewRetrieval(kind, fresh, parts);
  freeParts(parts);
  parts.head.dispose();
  fresh.dispose();
  return accuracy;
}

// 256 training scenes, one slot each (255 negatives a step), 300 steps of 16 (19 epochs).
const lab = createCmcTask({ bankSize: 256, indexed: true });
const labItems = labScenes(256, 7);
const LAB_STEPS = 300;
// Moments of two cameras; slots are hashed from camera 0's source and frame index (as for video files), into a bank
// of 4096 (negatives are drawn among the written slots).
const cameras = createCmcViewsTask({ bankSize: 4096, negatives: 127 });
const cameraItems = scenes(128, 7).map((f) => [f, secondCamera(f)] as const);
const cameraSlots = cameraItems.map(([f]) => slotOf(f, 4096, false));
// A control drawing any of the 4096 slots learns (0.148 at 200 steps against a bar of 0.131): most of its slots
// are never written, and an unwritten slot's positive is the other camera's feature of the same moment.
const CAMERA_STEPS = 150;

// Session 7 measured 0.078 here (512 scenes, 400 steps; random init 0.016, random slots 0.031) and left it failing:
// each view's embeddings collapsed and the two views' pointed apart (see `projection` and `MemoryBank.logits` in
// the task). Two runs of about 20 s each (a trained run and its broken control): a shorter run or fewer scenes
// leaves too small a margin (0.16 at 250 steps on 128 scenes).
test.serial('cmc learns to match the L and ab views of held-out pictures; random slots do not', async (t) => {
  const base = atRandomInit('lab', lab as PretextTask<never>);
  const learned = await trained('lab', lab, labItems, LAB_STEPS);
  const broken = await trained(
    'lab',
    withRandomSlots(
      lab,
      labItems.map((f) => f.index),
    ),
    labItems,
    LAB_STEPS,
  );
  t.log(
    `held-out L -> ab top-1 (n=${HELD_OUT}, chance 1/32): cmc ${learned.toFixed(3)}, random init ${base.toFixed(3)}, random slots ${broken.toFixed(3)}`,
  );
  t.true(learned > base + MARGIN, `cmc ${learned} vs random init ${base}`);
  t.true(broken < base + MARGIN, `random slots ${broken} vs random init ${base}`);
});

longSerial('cmc-views learns to match two cameras of held-out moments; random slots do not', async (t) => {
  const base = atRandomInit('cameras', cameras as PretextTask<never>);
  const learned = await trained('cameras', cameras, cameraItems, CAMERA_STEPS);
  const broken = await trained('cameras', withRandomSlots(cameras, cameraSlots), cameraItems, CAMERA_STEPS);
  t.log(
    `held-out camera 0 -> camera 1 top-1 (n=${HELD_OUT}, chance 1/32): cmc-views ${learned.toFixed(3)}, random init ${base.toFixed(3)}, random slots ${broken.toFixed(3)}`,
  );
  t.true(learned > base + MARGIN, `cmc-views ${learned} vs random init ${base}`);
  t.true(broken < base + MARGIN, `random slots ${broken} vs random init ${base}`);
});
