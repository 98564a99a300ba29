// issue 13: instance discrimination (a memory bank of one vector per item, a softmax over sampled negatives) with
// its bank kept exactly across a resume.
import test from 'ava';
import { longSerial } from '../../_long.ts';
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom, from, map, pipe, toArray } from 'rxjs';
import { OptionError } from '../../../core/errors.ts';
import { Rng } from '../../../core/rng.ts';
import { selectBackend } from '../../../models/backend.ts';
import { buildFrameEncoder } from '../../../models/frameEncoder.ts';
import type { Frame } from '../../../pipeline/frame.ts';
import { createInstanceDiscTask } from '../../../tasks/contrastive/instanceDisc.ts';
import { MemoryBank, slotOf } from '../../../tasks/contrastive/memoryBank.ts';
import { TASKS } from '../../../tasks/registry.ts';
import type { PretextTask, TaskParts } from '../../../tasks/task.ts';
import { train, type TrainOptions } from '../../../training/trainer.ts';
import { dispose, learn } from '../_learn.ts';
import { heldOutRetrieval, scenes, SIZE } from './_viewPairs.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

const encoderOf = () =>
  buildFrameEncoder({ inputShape: [SIZE, SIZE, 3], featureSize: 32, width: 8, blocks: 2, seed: 1 });

test('instance-disc is in the registry, checks its options and sizes its bank by the image set', (t) => {
  t.is(TASKS['instance-disc'].reads, 'images');
  t.is(TASKS['instance-disc'].family, 'contrastive');
  t.throws(() => createInstanceDiscTask({ temperature: 0 }), { instanceOf: OptionError });
  t.throws(() => createInstanceDiscTask({ bankSize: 1 }), { instanceOf: OptionError });
  const configured = TASKS['instance-disc'].configure({ itemShape: [SIZE, SIZE, 3], itemCount: 300 });
  const encoder = encoderOf();
  const parts = configured.build(encoder, new Rng(1));
  t.deepEqual((parts.state as MemoryBank).banks[0]!.shape, [300, 128]);
  parts.state!.dispose();
  parts.head.dispose();
  encoder.dispose();
});

test('a live input is refused with an error naming it and the fix', (t) => {
  const error = t.throws(() => TASKS['instance-disc'].sampler({ rng: new Rng(1), inputs: ['rtsp://cam/1'] }), {
    instanceOf: OptionError,
  });
  t.regex(error.message, /record it to a file.*moco.*rtsp:\/\/cam\/1/);
});

test('slots: an image set indexes them; video frames of one file take consecutive ones', (t) => {
  t.is(slotOf({ index: 7, source: 'a.idx#7' }, 10, true), 7);
  t.throws(() => slotOf({ index: 10, source: 'a.idx#10' }, 10, true), { instanceOf: OptionError });
  const first = slotOf({ index: 0, source: 'a.mp4' }, 1000, false);
  t.is(slotOf({ index: 1, source: 'a.mp4' }, 1000, false), (first + 1) % 1000);
});

test('samples hold one augmented view and the slot of their frame', async (t) => {
  const task = createInstanceDiscTask({ bankSize: 8, indexed: true });
  const samples = await firstValueFrom(from(scenes(8, 3)).pipe(task.sampler({ rng: new Rng(2) }), toArray()));
  t.deepEqual(
    samples.map((s) => s.inputs[1]![0]),
    [0, 1, 2, 3, 4, 5, 6, 7],
  );
  t.is(samples[0]!.inputs[0]!.length, SIZE * SIZE * 3);
  const again = await firstValueFrom(from(scenes(8, 3)).pipe(task.sampler({ rng: new Rng(2) }), toArray()));
  t.deepEqual(again[5]!.inputs[0], samples[5]!.inputs[0]);
});

test('the bank: logits put the own slot first, masked negatives; a write sets a slot, later ones mix by the momentum', (t) => {
  const bank = new MemoryBank({ size: 6, dim: 4, negatives: 5, seed: 3 });
  const features = tf.tidy(() => tf.div(tf.tensor2d([[1, 0, 0, 0]]), 1) as tf.Tensor2D);
  const before = bank.banks[0]!.arraySync() as number[][];
  const logits = bank.logits(0, features, Int32Array.of(2), 0.5, true);
  const row = (logits.arraySync() as number[][])[0]!;
  t.true(Math.abs(row[0]! - before[2]![0]! / 0.5) < 1e-5);
  // Every negative is either another slot's similarity or the masked own slot.
  t.true(row.slice(1).every((v) => v < -1e8 || before.some((r, j) => j !== 2 && Math.abs(v - r[0]! / 0.5) < 1e-5)));
  bank.hold([features], Int32Array.of(2));
  bank.afterStep();
  // A first write takes the feature itself; later ones mix: normalize(0.5 v + 0.5 f).
  t.deepEqual(Array.from(bank.written), [2]);
  const first = bank.banks[0]!.arraySync() as number[][];
  [1, 0, 0, 0].forEach((v, k) => t.true(Math.abs(first[2]![k]! - v) < 1e-5));
  const second = tf.tensor2d([[0, 1, 0, 0]]);
  bank.hold([second], Int32Array.of(2));
  bank.afterStep();
  const after = bank.banks[0]!.arraySync() as number[][];
  [Math.SQRT1_2, Math.SQRT1_2, 0, 0].forEach((v, k) => t.true(Math.abs(after[2]![k]! - v) < 1e-5));
  t.deepEqual(after[0], before[0]);
  second.dispose();
  tf.dispose([features, logits]);
  bank.dispose();
});

// Held-out: as simclr's and moco's tests, two fresh augmentations of 64 unseen scenes in batches of 16, and how
// often a view's nearest other view (through the trained encoder and projection) is its partner (chance 1/31).
// 128 training scenes, one slot each, 127 negatives a step, 800 steps of 16 (100 epochs: a slot is rewritten once an
// epoch, so the bank learns slower than simclr's in-batch pairs). The broken control gives every sample the slot of a
// random other scene, drawn afresh each time: its "positive" is another item's memory.
// When written: instance-disc 0.391, random init 0.281, random slots 0.195.
const STEPS = 800;
const MARGIN = 0.1;
const small = createInstanceDiscTask({ bankSize: 128, indexed: true });

function withRandomSlots(task: PretextTask<Frame>): PretextTask<Frame> {
  return {
    ...task,
    sampler: (context) => {
      const rng = context.rng.fork();
      return pipe(
        task.sampler(context),
        map((s) => ({ ...s, inputs: [s.inputs[0]!, Float32Array.of(rng.int(128))] })),
      );
    },
  };
}

async function trainedRetrieval(task: PretextTask<Frame>): Promise<number> {
  const learned = await learn(task, scenes(128, 7), SIZE, { steps: STEPS, batchSize: 16 });
  const accuracy = await heldOutRetrieval(learned.encoder, learned.result.heads['instance-disc']!);
  learned.result.parts['instance-disc']!.state!.dispose();
  dispose(learned);
  return accuracy;
}

let randomInit: number | undefined;
async function randomInitRetrieval(): Promise<number> {
  if (randomInit !== undefined) return randomInit;
  const fresh = encoderOf();
  const parts = small.build(fresh, new Rng(4));
  randomInit = await heldOutRetrieval(fresh, parts.head);
  parts.state!.dispose();
  parts.head.dispose();
  fresh.dispose();
  return randomInit;
}

longSerial('instance-disc learns to find the other view of held-out images, above random init', async (t) => {
  const base = await randomInitRetrieval();
  const trained = await trainedRetrieval(small);
  t.log(
    `held-out top-1 partner retrieval (n=128 views, chance 1/31): instance-disc ${trained.toFixed(3)}, random init ${base.toFixed(3)}`,
  );
  t.true(trained > base + MARGIN, `instance-disc ${trained.toFixed(3)} vs random init ${base.toFixed(3)}`);
});

longSerial('broken control: the same run with the slots of random other items does not', async (t) => {
  const base = await randomInitRetrieval();
  const broken = await trainedRetrieval(withRandomSlots(small));
  t.log(`held-out top-1 partner retrieval: random slots ${broken.toFixed(3)}, random init ${base.toFixed(3)}`);
  t.true(broken < base + MARGIN, `random slots ${broken.toFixed(3)} vs random init ${base.toFixed(3)}`);
});

// Resume: 48 scenes, one slot each, 16 negatives a step, batches of 8 (every slot written by step 6); cut at 6 of 10.
const resumable = createInstanceDiscTask({ bankSize: 48, indexed: true, negatives: 16, dim: 16 });
const frames = scenes(48, 11);

function options(overrides: Partial<TrainOptions> = {}): TrainOptions {
  return {
    encoder: encoderOf(),
    itemShape: [SIZE, SIZE, 3],
    tasks: [{ task: resumable, samples: (_e, _v, rng: Rng) => from(frames).pipe(resumable.sampler({ rng })) }],
    steps: 10,
    batchSize: 8,
    seed: 6,
    ...overrides,
  };
}

/** Every number a run ends with: encoder, head, then the state (the bank and its generator). */
function snapshot(encoder: tf.LayersModel, parts: TaskParts): Float32Array[] {
  const state = Object.values(parts.state!.tensors());
  return [...encoder.getWeights(), ...parts.head.getWeights(), ...state].map((w) => Float32Array.from(w.dataSync()));
}

function maxDifference(a: Float32Array[], b: Float32Array[]): number {
  return Math.max(...a.map((x, i) => Math.max(...x.map((v, j) => Math.abs(v - b[i]![j]!)))));
}

test.serial('a resumed instance-disc run ends with the weights and memory bank of an uninterrupted one', async (t) => {
  const dirs = await Promise.all([0, 1].map(() => mkdtemp(join(tmpdir(), 'tempo-instdisc-'))));
  t.teardown(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
  const straight = options({ outDir: dirs[0], checkpointEvery: 3 });
  const whole = await train(straight);
  const expected = snapshot(straight.encoder, whole.parts['instance-disc']!);

  const first = options({ steps: 6, outDir: dirs[1] });
  (await train(first)).parts['instance-disc']!.state!.dispose();
  const second = options({ outDir: dirs[1], resume: true });
  const resumed = await train(second);
  t.is(resumed.startStep, 6);
  const actual = snapshot(second.encoder, resumed.parts['instance-disc']!);
  t.is(actual.length, expected.length);
  const diff = maxDifference(actual, expected);
  t.log(`max difference of weights, memory bank, written mask and generator: ${diff}`);
  t.true(diff < 1e-5, `max difference of weights, memory bank and its generator ${diff}`);
  for (const r of [whole, resumed]) r.parts['instance-disc']!.state!.dispose();
  straight.encoder.dispose();
  second.encoder.dispose();
});
