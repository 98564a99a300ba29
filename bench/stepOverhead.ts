// `npm run bench -- step-overhead`: steps/s of a model so small that its kernels cost next to nothing, so what is
// measured is the cost of a step itself: tfjs's per-op dispatch (about 300 kernels for the smallest encoder and Adam)
// and, on the second row, what the shared trainer adds (collation, the per-step metrics read, the finite check,
// the metrics line). Ratio: trainer steps/s against the bare `optimizer.minimize` loop on the same model and batches.
// Measured on this 2-core machine, the trainer's ratio comes out above 1 (1.3 to 1.5): its step is cheaper than the
// bare loop's, for a reason not yet found (both run after 500 warm-up steps; the bare loop over one batch is no faster).
import * as tf from '@tensorflow/tfjs';
import { from } from 'rxjs';
import { pathToFileURL } from 'node:url';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '../models/backend.ts';
import { buildFrameEncoder, type FrameEncoderOptions } from '../models/frameEncoder.ts';
import { collate, disposeBatch } from '../pipeline/batchSamples.ts';
import { Rng } from '../core/rng.ts';
import { train } from '../training/trainer.ts';
import type { Frame } from '../pipeline/frame.ts';
import type { Sample } from '../pipeline/sample.ts';
import { rotation, rotationSample } from '../tasks/image/rotation.ts';

/** One line of the bench. */
export interface OverheadRow {
  /** What ran the steps. */
  loop: string;
  steps: number;
  stepsPerSecond: number;
  /** Kernels one step runs (tf.profile), on the bare loop's row. */
  kernelsPerStep?: number;
  /** Steps/s against the bare loop of the same run. */
  ratio: number;
}

/** The smallest encoder the shared builder makes: 8x8 gray, one conv block of 2 channels, 4 features. */
const TINY: FrameEncoderOptions = { inputShape: [8, 8, 1], width: 2, blocks: 1, featureSize: 4, seed: 1 };

function tinyFrames(count: number): Frame[] {
  const rng = new Rng(4);
  return Array.from({ length: count }, (_, index) => ({
    data: Uint8Array.from({ length: 64 }, () => Math.floor(rng.next() * 256)),
    width: 8,
    height: 8,
    channels: 1 as const,
    index,
    timestamp: index / 25,
    source: 'tiny',
  }));
}

/**
 * Steps/s of rotation prediction on the tiny encoder, batch 4: a bare `optimizer.minimize` loop over batches built
 * beforehand, then the shared trainer fed the same frames from memory.
 *
 * @example
 * const [bare, trainer] = await benchStepOverhead({ steps: 20 });
 * trainer.ratio; // e.g. 0.8: the trainer adds a quarter to a step that does no work
 */
export async function benchStepOverhead(options: { steps?: number; warmup?: number } = {}): Promise<OverheadRow[]> {
  const { steps = 500, warmup = 500 } = options;
  const batchSize = 4;
  await selectBackend();
  const frames = tinyFrames(batchSize * (steps + warmup));
  const itemShape = TINY.inputShape;

  const samples: Sample[] = frames.map(rotationSample);
  const batches = Array.from({ length: steps + warmup }, (_, i) =>
    collate(
      samples.slice(i * batchSize, (i + 1) * batchSize),
      rotation.inputShapes(itemShape),
      rotation.labelShape(itemShape),
    ),
  );
  const encoder = buildFrameEncoder(TINY);
  const parts = rotation.build(encoder, new Rng(3));
  const optimizer = tf.train.adam(1e-3);
  const variables = [encoder, parts.head].flatMap((m) => m.trainableWeights.map((w) => w.read() as tf.Variable));
  const step = async (batch: (typeof batches)[number]) => {
    const loss = optimizer.minimize(
      () => rotation.loss(batch.labels, rotation.forward(encoder, parts, batch.inputs, true)),
      true,
      variables,
    )!;
    await loss.data();
    loss.dispose();
  };
  const bareRate = async () => {
    let started = 0;
    for (const [i, batch] of batches.entries()) {
      if (i === warmup) started = performance.now();
      await step(batch);
    }
    return steps / ((performance.now() - started) / 1000);
  };
  // tfjs's JavaScript takes several hundred steps to reach full speed (JIT); the first pass only warms it up.
  await bareRate();
  const bare = await bareRate();
  const profile = await tf.profile(() => step(batches[0]!));
  const kernelsPerStep = profile.kernels.filter((k) => !k.name.endsWith('__op') && k.name !== 'unnamed scope').length;
  batches.forEach(disposeBatch);
  encoder.dispose();
  parts.head.dispose();
  optimizer.dispose();

  const outDir = await mkdtemp(join(tmpdir(), 'step-overhead-'));
  const live = buildFrameEncoder(TINY);
  let liveStart = 0;
  try {
    const result = await train({
      encoder: live,
      itemShape,
      steps: steps + warmup,
      batchSize,
      outDir,
      checkpointEvery: 1e9,
      tasks: [{ task: rotation, samples: () => from(frames).pipe(rotation.sampler({ rng: new Rng(2) })) }],
      onStep: (m) => {
        if (m.step === warmup) liveStart = performance.now();
      },
    });
    Object.values(result.heads).forEach((h) => h.dispose());
  } finally {
    live.dispose();
    await rm(outDir, { recursive: true, force: true });
  }
  const trainer = steps / ((performance.now() - liveStart) / 1000);
  return [
    {
      loop: 'bare optimizer.minimize, batches built beforehand',
      steps,
      stepsPerSecond: bare,
      kernelsPerStep,
      ratio: 1,
    },
    {
      loop: 'shared trainer (train), frames in memory, metrics.jsonl',
      steps,
      stepsPerSecond: trainer,
      ratio: trainer / bare,
    },
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.table(await benchStepOverhead());
}
