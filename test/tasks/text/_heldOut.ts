import type * as tf from '@tensorflow/tfjs';
import { from, lastValueFrom, map, pipe, toArray, type OperatorFunction } from 'rxjs';
import { Rng } from '../../../core/rng.ts';
import { metricOverBatches } from '../../../evaluation/pretextMetrics.ts';
import type { Sample } from '../../../pipeline/sample.ts';
import type { PretextTask, TaskParts } from '../../../tasks/task.ts';
import type { TokenizedSentence } from '../../../text/tokenizedSentence.ts';

/** A task's metric on held-out items (inference mode), in full batches of `batchSize`, and the batches. Test helper. */
export async function heldOutMetric<Raw>(
  task: PretextTask<Raw>,
  encoder: tf.LayersModel,
  parts: TaskParts,
  items: readonly Raw[],
  itemShape: number[],
  batchSize: number,
): Promise<{ accuracy: number; batches: Sample[][] }> {
  const samples = await lastValueFrom(from(items).pipe(task.sampler({ rng: new Rng(4242) }), toArray()));
  const batches: Sample[][] = [];
  for (let i = 0; i + batchSize <= samples.length; i += batchSize) batches.push(samples.slice(i, i + batchSize));
  const { accuracy } = await metricOverBatches(task as PretextTask<never>, encoder, parts, batches, itemShape);
  return { accuracy, batches };
}

/**
 * The same task with its sampler's output changed by `broken` (a broken control: labels shuffled, tokens
 * permuted); everything else (parts, loss, metric) is the task's own.
 */
export function withBrokenSamples<Raw>(
  task: PretextTask<Raw>,
  broken: (rng: Rng) => OperatorFunction<Sample, Sample>,
): PretextTask<Raw> {
  // Seeded from the sampler's generator without drawing from it, so the task's own draws stay as they were.
  return {
    ...task,
    sampler: (context) => pipe(task.sampler(context), broken(new Rng(context.rng.state ^ 0x5bd1e995))),
  };
}

/** Labels replaced by fair coin flips: the binary label carries no signal. */
export const coinLabels = (rng: Rng): OperatorFunction<Sample, Sample> =>
  map((s) => ({ ...s, label: Float32Array.of(rng.next() < 0.5 ? 1 : 0) }));

/**
 * The sentences with every token moved to a random place of the corpus (one seeded permutation of all token
 * occurrences): sentence lengths, documents and token frequencies stay, any order or co-occurrence goes.
 */
export function permuteTokens(sentences: readonly TokenizedSentence[], seed: number): TokenizedSentence[] {
  const tokens = new Rng(seed).shuffle(sentences.flatMap((s) => [...s.ids]));
  let next = 0;
  return sentences.map((s) => ({ ...s, ids: Int32Array.from(s.ids, () => tokens[next++]!) }));
}
