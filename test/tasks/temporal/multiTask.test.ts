import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { from } from 'rxjs';
import { syntheticFrames } from '../../../fixtures/frames.ts';
import { selectBackend } from '../../../models/backend.ts';
import { buildFrameEncoder } from '../../../models/frameEncoder.ts';
import type { Rng } from '../../../core/rng.ts';
import { train } from '../../../training/trainer.ts';
import type { StepMetrics } from '../../../training/stepMetrics.ts';
import { parseTaskList, TASKS } from '../../../tasks/registry.ts';
import type { PretextTask } from '../../../tasks/task.ts';
import { cpc } from '../../../tasks/temporal/cpc.ts';
import { mean } from '../_learn.ts';

const SIZE = 24;
test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));
const frames = syntheticFrames({ clips: 8, seed: 3, frames: 36, width: SIZE, height: SIZE });
const replay = (task: PretextTask<never>) => (_epoch: number, _valve: unknown, rng: Rng) =>
  from(frames as never[]).pipe(task.sampler({ rng }));

test.serial('order, frame-sim and cpc train together on one encoder and log per-task metrics', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-multitask-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const choices = parseTaskList('order,frame-sim,cpc:0.5');
  const encoder = buildFrameEncoder({ inputShape: [SIZE, SIZE, 3], featureSize: 32, width: 8, blocks: 2, seed: 1 });
  const result = await train({
    encoder,
    itemShape: [SIZE, SIZE, 3],
    tasks: choices.map(({ name, weight }) => ({
      task: TASKS[name] as PretextTask<never>,
      weight,
      samples: replay(TASKS[name] as PretextTask<never>),
    })),
    steps: 60,
    batchSize: 8,
    learningRate: 3e-3,
    seed: 2,
    outDir: dir,
  });
  t.is(result.steps, 60);
  t.deepEqual(Object.keys(result.heads).sort(), ['cpc', 'frame-sim', 'order']);
  const lines = (await readFile(join(dir, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as StepMetrics);
  t.is(lines.length, 60);
  for (const m of lines) {
    t.deepEqual(Object.keys(m.tasks).sort(), ['cpc', 'frame-sim', 'order']);
    const weighted = m.tasks.order!.loss + m.tasks['frame-sim']!.loss + 0.5 * m.tasks.cpc!.loss;
    t.true(
      Math.abs(m.loss - weighted) < 1e-3 * Math.max(1, weighted),
      `step ${m.step}: total ${m.loss} vs weighted sum ${weighted}`,
    );
  }
  // The shared encoder serves all three: each task's loss falls while the others train too.
  for (const name of ['frame-sim', 'cpc'] as const) {
    const losses = lines.map((m) => m.tasks[name]!.loss);
    t.true(
      mean(losses.slice(-15)) < mean(losses.slice(0, 10)),
      `${name}: ${mean(losses.slice(0, 10)).toFixed(3)} -> ${mean(losses.slice(-15)).toFixed(3)}`,
    );
  }
  encoder.dispose();
  Object.values(result.heads).forEach((h) => h.dispose());
});

test.serial('training cpc through train leaks no tensors: numTensors stays flat over 30 steps', async (t) => {
  const before = tf.memory().numTensors;
  const counts: number[] = [];
  const encoder = buildFrameEncoder({ inputShape: [SIZE, SIZE, 3], featureSize: 16, width: 4, blocks: 2, seed: 1 });
  const result = await train({
    encoder,
    itemShape: [SIZE, SIZE, 3],
    tasks: [{ task: cpc, samples: replay(cpc) }],
    steps: 32,
    batchSize: 4,
    onStep: () => counts.push(tf.memory().numTensors),
  });
  // Adam makes its slots on the first step; from then on the count must not move.
  t.is(new Set(counts.slice(2)).size, 1, `tensor counts over steps: ${[...new Set(counts)].join(', ')}`);
  encoder.dispose();
  Object.values(result.heads).forEach((h) => h.dispose());
  t.is(tf.memory().numTensors, before);
});
