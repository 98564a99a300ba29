import * as tf from '@tensorflow/tfjs';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { firstValueFrom, take, toArray } from 'rxjs';
import { generateLabelledClips } from '../fixtures/syntheticVideos.ts';
import { selectBackend } from '../models/backend.ts';
import { batchSamples, collate, disposeBatch } from '../pipeline/batchSamples.ts';
import { buildFrameEncoder } from '../models/frameEncoder.ts';
import { Rng } from '../core/rng.ts';
import { train } from '../training/trainer.ts';
import { videoEpoch } from '../pipeline/videoMix.ts';
import { videoSamples } from '../recipes/videoSamples.ts';
import { frameShape } from '../pipeline/frameFormat.ts';
import type { FrameFormat } from '../pipeline/frameFormat.ts';
import type { PretextTask } from '../tasks/task.ts';
import type { Frame } from '../pipeline/frame.ts';
import { orderVerification as order } from '../tasks/temporal/orderVerification.ts';

const orderVerification: PretextTask<Frame> = order;

/** One line of the bench. */
export interface FeedRow {
  /** What fed the steps. */
  feed: string;
  steps: number;
  samplesPerSecond: number;
  /** samples/s against the pre-built tensors of the same run. */
  ratio: number;
}

/** Options of {@link benchTrainerFeed}. */
export interface TrainerFeedOptions {
  /** Folder holding `video/`. Default `$TEMPO_DATA`, else `<repo>/../shared/data`; generated fixture clips when absent. */
  dataDir?: string;
  /** Timed steps of each side (after `warmup`). Default 60. */
  steps?: number;
  warmup?: number;
  batchSize?: number;
  size?: number;
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Samples/s of the shared trainer fed by the live pipeline (ffmpeg decode -> order sampler -> batcher -> pull
 * queue -> collate) against the same model, optimizer and batch size stepping over tensors built beforehand.
 * The ratio says what the pipeline costs on top of the math: 1.0 means the data path is free.
 */
export async function benchTrainerFeed(options: TrainerFeedOptions = {}): Promise<FeedRow[]> {
  const { steps = 60, warmup = 5, batchSize = 16, size = 64 } = options;
  await selectBackend();
  const videos = await benchVideos(options.dataDir, size);
  const format: FrameFormat = { width: size, height: size };
  const shape = frameShape(format);
  const encoderOptions = { inputShape: shape, featureSize: 64, width: 8, blocks: 3, seed: 1 };

  // Baseline: the same number of batches from the same sampler, as tensors before the clock starts.
  const samples = await firstValueFrom(
    videoEpoch(videos, format, new Rng(1)).pipe(
      orderVerification.sampler({ rng: new Rng(2) }),
      batchSamples(batchSize),
      take(steps + warmup),
      toArray(),
    ),
  );
  const batches = samples.map((s) =>
    collate(s, orderVerification.inputShapes(shape), orderVerification.labelShape(shape)),
  );
  const encoder = buildFrameEncoder(encoderOptions);
  const { head } = orderVerification.build(encoder, new Rng(3));
  const optimizer = tf.train.adam(1e-3);
  const variables = [encoder, head].flatMap((m) => m.trainableWeights.map((w) => w.read() as tf.Variable));
  let started = 0;
  for (const [i, batch] of batches.entries()) {
    if (i === warmup) started = performance.now();
    const loss = optimizer.minimize(
      () => orderVerification.loss(batch.labels, orderVerification.forward(encoder, { head }, batch.inputs, true)),
      true,
      variables,
    )!;
    await loss.data();
    loss.dispose();
  }
  const baseline = ((batches.length - warmup) * batchSize) / ((performance.now() - started) / 1000);
  batches.forEach(disposeBatch);
  encoder.dispose();
  head.dispose();
  optimizer.dispose();

  // Live: the trainer pulls from ffmpeg through the sampler; timed over the same steps after the same warm-up.
  const live = buildFrameEncoder(encoderOptions);
  let liveStart = 0;
  const result = await train({
    encoder: live,
    itemShape: shape,
    steps: steps + warmup,
    batchSize,
    tasks: [{ task: orderVerification, samples: videoSamples(orderVerification, videos, format) }],
    onStep: (m) => {
      if (m.step === warmup) liveStart = performance.now();
    },
  });
  const liveRate = (steps * batchSize) / ((performance.now() - liveStart) / 1000);
  Object.values(result.heads).forEach((h) => h.dispose());
  live.dispose();
  return [
    { feed: 'tensors built beforehand', steps, samplesPerSecond: baseline, ratio: 1 },
    {
      feed: `live: ffmpeg -> sampler -> batcher (${videos.length} videos)`,
      steps,
      samplesPerSecond: liveRate,
      ratio: liveRate / baseline,
    },
  ];
}

async function benchVideos(dataDir: string | undefined, size: number): Promise<string[]> {
  const videoDir = join(dataDir ?? process.env.TEMPO_DATA ?? join(repoRoot, '..', 'shared', 'data'), 'video');
  if (existsSync(videoDir))
    return readdirSync(videoDir)
      .sort()
      .map((name) => join(videoDir, name));
  console.log(`bench/trainerFeed: no videos at ${videoDir}; using generated fixture clips`);
  const { clips } = await generateLabelledClips({
    dir: join(repoRoot, '.cache', 'fixtures', 'bench'),
    seed: 5,
    count: 8,
    width: size,
    height: size,
  });
  return clips.map((c) => c.path);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.table(await benchTrainerFeed());
}
