import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { from } from 'rxjs';
import { syntheticFrames } from '../../fixtures/frames.ts';
import { selectBackend } from '../../models/backend.ts';
import { buildFrameEncoder } from '../../models/frameEncoder.ts';
import { DivergedError } from '../../core/errors.ts';
import { checkFinite, firstNonFinite } from '../../training/finiteCheck.ts';
import { train } from '../../training/trainer.ts';
import type { Rng } from '../../core/rng.ts';
import { orderVerification } from '../../tasks/temporal/orderVerification.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

test('a NaN loss names the step and the learning rate', (t) => {
  const error = t.throws(() => checkFinite(7, [Number.NaN, 0.5, 1], [], 1e308), { instanceOf: DivergedError });
  t.regex(error.message, /diverged at step 7: loss NaN is not finite .*learning rate 1e\+308.*--lr/);
  t.notThrows(() => checkFinite(1, [0.7, 0.7, 0.5], []));
});

test('a weight holding Infinity or NaN is named; finite weights pass', (t) => {
  const ok = tf.variable(tf.tensor1d([1, -2, 3]), true, 'ok');
  const inf = tf.variable(tf.tensor1d([1, Infinity]), true, 'blown');
  const nan = tf.variable(tf.tensor1d([Number.NaN]), true, 'nan');
  const before = tf.memory().numTensors;
  t.is(firstNonFinite([ok]), undefined);
  t.is(firstNonFinite([ok, inf, nan]), 'blown');
  t.throws(() => checkFinite(3, [0.1], [ok, nan]), { message: /step 3: weight nan is not finite/ });
  t.is(tf.memory().numTensors, before);
  tf.dispose([ok, inf, nan]);
});

// issue 10, item 3: --lr 1e308 gave NaN weights, "last loss NaN", exit 0 and a saved encoder.
test('a run that diverges throws at the first non-finite step, keeps its last good checkpoint and saves no encoder', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-finite-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const frames = syntheticFrames({ clips: 4, seed: 3, frames: 24, width: 16, height: 16 });
  const encoder = buildFrameEncoder({ inputShape: [16, 16, 3], featureSize: 8, width: 4, blocks: 1, seed: 1 });
  const error = await t.throwsAsync(
    train({
      encoder,
      itemShape: [16, 16, 3],
      tasks: [
        {
          task: orderVerification,
          samples: (_e, _v, rng: Rng) => from(frames).pipe(orderVerification.sampler({ rng })),
        },
      ],
      steps: 20,
      batchSize: 4,
      learningRate: 1e30,
      outDir: dir,
      checkpointEvery: 1,
    }),
    { instanceOf: DivergedError },
  );
  encoder.dispose();
  const state = JSON.parse(await readFile(join(dir, 'checkpoint', 'state.json'), 'utf8')) as { step: number };
  t.true(error.step >= 2);
  t.is(state.step, error.step - 1);
  t.false(existsSync(join(dir, 'encoder')));
});
