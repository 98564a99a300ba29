import * as tf from '@tensorflow/tfjs';
import { firstValueFrom, bufferCount, toArray } from 'rxjs';
import { Rng } from '../core/rng.ts';
import type { Frame } from '../pipeline/frame.ts';
import { type FrameFormat, frameShape } from '../pipeline/frameFormat.ts';
import { videoEpoch } from '../pipeline/videoMix.ts';
import type { PretextTask, TaskParts } from '../tasks/task.ts';
import { collate, disposeBatch } from '../pipeline/batchSamples.ts';
import type { Sample } from '../pipeline/sample.ts';

/**
 * Pretext accuracy of a trained task on held-out videos: every sample the sampler draws from one pass over
 * them, in batches, mean of the task's metric weighted by batch size.
 */
export async function evaluateTask(
  task: PretextTask<Frame>,
  encoder: tf.LayersModel,
  parts: TaskParts,
  videos: readonly string[],
  format: FrameFormat,
  options: { seed?: number; batchSize?: number } = {},
): Promise<{ accuracy: number; samples: number }> {
  const rng = new Rng(options.seed ?? 12345);
  const shape = frameShape(format);
  // Unlike training, the short last batch counts too.
  const batches = await firstValueFrom(
    videoEpoch(videos, format, rng).pipe(
      task.sampler({ rng: rng.fork() }),
      bufferCount(options.batchSize ?? 32),
      toArray(),
    ),
  );
  return metricOverBatches(task, encoder, parts, batches, shape);
}

/**
 * A task's metric over batches of samples (inference mode), the mean weighted by batch size. Batches smaller
 * than `minBatch` are left out after the first: contrastive tasks score within a batch, and a tiny one is an
 * easier test.
 */
export async function metricOverBatches(
  task: PretextTask<never>,
  encoder: tf.LayersModel,
  parts: TaskParts,
  batches: readonly Sample[][],
  itemShape: readonly number[],
  minBatch = 1,
): Promise<{ accuracy: number; samples: number }> {
  let correct = 0;
  let count = 0;
  for (const samples of batches) {
    if (samples.length < minBatch && count > 0) continue;
    const batch = collate(samples, task.inputShapes(itemShape), task.labelShape(itemShape));
    const metric = tf.tidy(() => task.metric(batch.labels, task.forward(encoder, parts, batch.inputs, false)));
    correct += (await metric.data())[0]! * samples.length;
    count += samples.length;
    metric.dispose();
    disposeBatch(batch);
  }
  return { accuracy: count ? correct / count : NaN, samples: count };
}
