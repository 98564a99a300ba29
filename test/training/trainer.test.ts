import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { from, NEVER } from 'rxjs';
import { syntheticFrames } from '../../fixtures/frames.ts';
import { selectBackend } from '../../models/backend.ts';
import { buildFrameEncoder } from '../../models/frameEncoder.ts';
import { OptionError } from '../../core/errors.ts';
import { train, type TrainOptions } from '../../training/trainer.ts';
import { learningRateAt } from '../../training/schedules.ts';
import type { Rng } from '../../core/rng.ts';
import { orderVerification } from '../../tasks/temporal/orderVerification.ts';

const SIZE = 24;

// wasm trains convs ~100x faster than the plain cpu backend, which would not fit the suite's time.
test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));
const frames = syntheticFrames({ clips: 12, seed: 3, frames: 36, width: SIZE, height: SIZE });

function options(overrides: Partial<TrainOptions> = {}): TrainOptions {
  return {
    encoder: buildFrameEncoder({ inputShape: [SIZE, SIZE, 3], featureSize: 32, width: 8, blocks: 2, seed: 1 }),
    itemShape: [SIZE, SIZE, 3],
    tasks: [
      {
        task: orderVerification,
        samples: (_epoch, _valve, rng: Rng) => from(frames).pipe(orderVerification.sampler({ rng })),
      },
    ],
    steps: 10,
    batchSize: 8,
    seed: 4,
    ...overrides,
  };
}

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-trainer-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test.serial('order verification learns: the loss falls and pretext accuracy ends well above chance', async (t) => {
  const losses: number[] = [];
  const accuracies: number[] = [];
  const opts = options({
    steps: 400,
    batchSize: 16,
    learningRate: 3e-3,
    onStep: (m) => (losses.push(m.loss), accuracies.push(m.tasks.order!.accuracy)),
  });
  const result = await train(opts);
  Object.values(result.heads).forEach((h) => h.dispose());
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const [first, last] = [mean(losses.slice(0, 50)), mean(losses.slice(-50))];
  t.true(last < first * 0.8, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  t.true(mean(accuracies.slice(-50)) > 0.65, `accuracy at the end ${mean(accuracies.slice(-50)).toFixed(3)}`);
  opts.encoder.dispose();
});

test.serial('tf.memory().numTensors stays flat over 50 steps', async (t) => {
  const counts: number[] = [];
  const before = tf.memory().numTensors;
  const opts = options({ steps: 52, onStep: () => counts.push(tf.memory().numTensors) });
  const result = await train(opts);
  // After two burn-in steps (Adam creates its slots on the first step) the count must not move.
  t.deepEqual(new Set(counts.slice(2)).size, 1, `tensor counts over steps: ${[...new Set(counts)].join(', ')}`);
  Object.values(result.heads).forEach((h) => h.dispose());
  opts.encoder.dispose();
  t.is(tf.memory().numTensors, before);
});

test.serial('a run resumed from its checkpoint ends with the same weights as an uninterrupted one', async (t) => {
  const straightDir = await tempDir(t);
  const straight = options({ steps: 12, outDir: straightDir, checkpointEvery: 6 });
  await train(straight);
  const expected = straight.encoder.getWeights().map((w) => w.dataSync().slice());

  const resumedDir = await tempDir(t);
  await train(options({ steps: 6, outDir: resumedDir }));
  const second = options({ steps: 12, outDir: resumedDir, resume: true });
  const result = await train(second);
  t.is(result.startStep, 6);
  t.is(result.steps, 12);
  const actual = second.encoder.getWeights().map((w) => w.dataSync());
  const maxDiff = Math.max(...actual.map((a, i) => Math.max(...a.map((v, j) => Math.abs(v - expected[i]![j]!)))));
  t.true(maxDiff < 1e-5, `max weight difference ${maxDiff}`);
  const lines = (await readFile(join(resumedDir, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.deepEqual(
    lines.map((l) => l.step),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
  );
});

test.serial('resuming with changed options is refused with a message naming them', async (t) => {
  const dir = await tempDir(t);
  await train(options({ steps: 2, outDir: dir }));
  await t.throwsAsync(train(options({ steps: 4, outDir: dir, resume: true, batchSize: 4 })), {
    message: /batchSize changed/,
  });
});

test.serial('bad options are rejected before any work', async (t) => {
  await t.throwsAsync(train(options({ steps: 0 })), { instanceOf: OptionError, message: /--steps/ });
  await t.throwsAsync(train(options({ batchSize: 2.5 })), { instanceOf: OptionError, message: /--batch/ });
  await t.throwsAsync(train(options({ resume: true })), { instanceOf: OptionError, message: /--out/ });
});

test.serial('an aborted run stops after the current step and writes its checkpoint', async (t) => {
  const dir = await tempDir(t);
  const controller = new AbortController();
  const result = await train(
    options({ steps: 100, outDir: dir, signal: controller.signal, onStep: (m) => m.step === 3 && controller.abort() }),
  );
  t.is(result.stoppedBy, 'signal');
  t.is(result.steps, 3);
  const state = JSON.parse(await readFile(join(dir, 'checkpoint', 'state.json'), 'utf8'));
  t.is(state.step, 3);
});

test.serial('a stop signal ends a wait for data at once and keeps data positions exact', async (t) => {
  const dir = await tempDir(t);
  const silent = { ...orderVerification, name: 'silent' };
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 500);
  const opts = options({ steps: 10, outDir: dir, signal: controller.signal });
  opts.tasks.push({ task: silent, samples: () => NEVER });
  const result = await train(opts);
  t.is(result.stoppedBy, 'signal');
  t.is(result.steps, 0);
  const state = JSON.parse(await readFile(join(dir, 'checkpoint', 'state.json'), 'utf8'));
  // The order batch taken before the wait went back: a resumed run starts with it.
  t.deepEqual(state.positions.order, { epoch: 0, index: 0 });
});

test.serial('hooks see every step after onStep, and an awaited hook holds the next step back', async (t) => {
  const seen: string[] = [];
  const opts = options({
    steps: 3,
    onStep: (m) => seen.push(`onStep ${m.step}`),
    hooks: [
      {
        onStep: async (m) => {
          await new Promise((resolve) => setTimeout(resolve, 20));
          seen.push(`hook ${m.step}`);
        },
      },
    ],
  });
  const result = await train(opts);
  t.deepEqual(seen, ['onStep 1', 'hook 1', 'onStep 2', 'hook 2', 'onStep 3', 'hook 3']);
  Object.values(result.heads).forEach((h) => h.dispose());
  opts.encoder.dispose();
});

test.serial('a LARS run on a warm-up and cosine schedule logs each step rate and resumes exactly', async (t) => {
  const schedule = { optimizer: 'lars' as const, lrSchedule: 'cosine' as const, warmupSteps: 3, learningRate: 0.5 };
  const straightDir = await tempDir(t);
  const straight = options({ steps: 12, outDir: straightDir, checkpointEvery: 6, ...schedule });
  await train(straight);
  const expected = straight.encoder.getWeights().map((w) => w.dataSync().slice());
  const rates = (await readFile(join(straightDir, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).lr as number);
  const want = Array.from({ length: 12 }, (_, i) =>
    learningRateAt(i + 1, { base: 0.5, schedule: 'cosine', warmupSteps: 3, totalSteps: 12 }),
  );
  t.deepEqual(rates, want);
  t.is(rates.at(-1), 0);

  // Cut at step 6 of the same 12-step schedule (a kill), then resumed.
  const resumedDir = await tempDir(t);
  const controller = new AbortController();
  await train(
    options({
      ...schedule,
      steps: 12,
      outDir: resumedDir,
      signal: controller.signal,
      onStep: (m) => m.step === 6 && controller.abort(),
    }),
  );
  const second = options({ ...schedule, steps: 12, outDir: resumedDir, resume: true });
  const result = await train(second);
  t.is(result.startStep, 6);
  const actual = second.encoder.getWeights().map((w) => w.dataSync());
  const maxDiff = Math.max(...actual.map((a, i) => Math.max(...a.map((v, j) => Math.abs(v - expected[i]![j]!)))));
  t.true(maxDiff < 1e-5, `max weight difference ${maxDiff}`);
  // Resuming it with Adam is refused, naming the optimizer.
  await t.throwsAsync(
    train(
      options({ steps: 14, outDir: resumedDir, resume: true, learningRate: 0.5, lrSchedule: 'cosine', warmupSteps: 3 }),
    ),
    {
      message: /optimizer changed/,
    },
  );
});

test.serial('the kNN monitor is scored every K steps and at the last, and logged as knnAccuracy', async (t) => {
  const dir = await tempDir(t);
  const scored: number[] = [];
  const opts = options({
    steps: 7,
    outDir: dir,
    knnMonitor: { every: 3, measure: () => (scored.push(scored.length), Promise.resolve(0.25 * scored.length)) },
  });
  const result = await train(opts);
  const lines = (await readFile(join(dir, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.deepEqual(
    lines.filter((l) => 'knnAccuracy' in l).map((l) => [l.step, l.knnAccuracy]),
    [
      [3, 0.25],
      [6, 0.5],
      [7, 0.75],
    ],
  );
  t.is(result.last?.knnAccuracy, 0.75);
  Object.values(result.heads).forEach((h) => h.dispose());
  opts.encoder.dispose();
});
