// The training and scoring loop of bench/textTasks.ts: one task trained on tokenized items, then scored on held-out ones.
import * as tf from '@tensorflow/tfjs';
import type { Sample } from '../pipeline/sample.ts';
import { lastValueFrom, from, Observable, toArray, take } from 'rxjs';
import { Rng } from '../core/rng.ts';
import type { Valve } from '../core/valve.ts';
import type { TokenizedSentence } from '../text/tokenizedSentence.ts';
import { shuffleBuffer } from '../core/shuffleBuffer.ts';
import { buildTextEncoder } from '../models/textEncoder.ts';
import type { PretextTask } from '../tasks/task.ts';
import { train } from '../training/trainer.ts';
import { collate, disposeBatch } from '../pipeline/batchSamples.ts';
import { rocAuc } from '../evaluation/rocAuc.ts';

export interface RunOptions {
  vocabSize: number;
  embeddingSize: number;
  /** Tokens per sequence of the encoder. */
  maxLength: number;
  steps: number;
  batchSize: number;
  learningRate: number;
  /** Samples held by the shuffle buffer. */
  shuffle: number;
}

export interface TaskRun {
  encoder: tf.LayersModel;
  head: tf.LayersModel;
  steps: number;
  seconds: number;
  /** Held-out pretext metric, averaged over held-out batches. */
  metric: number;
  /** ROC AUC of held-out logits against labels (binary tasks; NaN otherwise). */
  auc: number;
  heldOutSamples: Sample[];
  /** The held-out batches the metric was measured on (full batches of the run's batch size). */
  heldOutBatches: Sample[][];
  dispose(): void;
}

/**
 * The items of one epoch, groups (a paragraph's sentences, in order: NSP and CPC read neighbours) in a seeded
 * order, emitted only while the trainer's valve is open: `from(items)` would sample the whole epoch up front
 * (millions of word2vec pairs) before the first step.
 */
export function pacedItems<T>(groups: readonly (readonly T[])[], valve: Valve, rng: Rng): Observable<T> {
  return new Observable<T>((subscriber) => {
    const items = rng.shuffle(groups.map((_, i) => i)).flatMap((g) => groups[g]!);
    let next = 0;
    let cancel = (): void => {};
    const pump = (): void => {
      while (!subscriber.closed && next < items.length && valve.isOpen) subscriber.next(items[next++]!);
      if (subscriber.closed) return;
      if (next >= items.length) subscriber.complete();
      else cancel = valve.onOpen(() => setImmediate(pump));
    };
    pump();
    return () => cancel();
  });
}

/** Sentences grouped by their document (paragraph), in order. */
export function byDocument(sentences: TokenizedSentence[]): TokenizedSentence[][] {
  const groups: TokenizedSentence[][] = [];
  for (const s of sentences) {
    const last = groups[groups.length - 1];
    if (last && last[0]!.document === s.document) last.push(s);
    else groups.push([s]);
  }
  return groups;
}

export async function runTask<Raw>(
  task: PretextTask<Raw>,
  trainGroups: Raw[][],
  heldOutItems: Raw[],
  options: RunOptions,
): Promise<TaskRun> {
  // BENCH_LR / BENCH_BATCH override every task's, for trying settings on one task (with BENCH_TASKS).
  const o = {
    ...options,
    learningRate: Number(process.env.BENCH_LR ?? options.learningRate),
    batchSize: Number(process.env.BENCH_BATCH ?? options.batchSize),
  };
  const encoder = buildTextEncoder({
    vocabSize: o.vocabSize,
    maxLength: o.maxLength,
    embeddingSize: o.embeddingSize,
    hiddenSize: 64,
    seed: 1,
  });
  const t0 = performance.now();
  const result = await train({
    encoder,
    itemShape: [o.maxLength],
    tasks: [
      {
        task: task as PretextTask<never>,
        samples: (_epoch, valve, rng) =>
          pacedItems(trainGroups, valve, rng.fork()).pipe(
            task.sampler({ rng }),
            shuffleBuffer({ rng: rng.fork(), bufferSize: o.shuffle }),
          ),
      },
    ],
    steps: o.steps,
    batchSize: o.batchSize,
    learningRate: o.learningRate,
    seed: 1,
    progress: 'none',
  });
  const seconds = (performance.now() - t0) / 1000;
  if (result.steps === 0)
    throw new Error(`${task.name}: no training step ran (stopped by ${result.stoppedBy}): its sampler made no samples`);
  const head = result.heads[task.name]!;
  const heldOutSamples = await lastValueFrom(
    from(heldOutItems).pipe(
      task.sampler({ rng: new Rng(99) }),
      shuffleBuffer({ rng: new Rng(98), bufferSize: 20000 }),
      take(2048),
      toArray(),
    ),
  );
  const { metric, auc: heldOutAuc, batches } = evaluate(task, encoder, head, heldOutSamples, o.batchSize, o.maxLength);
  console.log(
    `${task.name}: ${result.steps} steps in ${seconds.toFixed(0)} s, last train loss ${result.last?.loss.toFixed(3)}, held-out metric ${metric.toFixed(3)}`,
  );
  return {
    encoder,
    head,
    steps: result.steps,
    seconds,
    metric,
    auc: heldOutAuc,
    heldOutSamples,
    heldOutBatches: batches,
    dispose: () => (encoder.dispose(), head.dispose()),
  };
}

export function evaluate(
  task: PretextTask<never>,
  encoder: tf.LayersModel,
  head: tf.LayersModel,
  samples: Sample[],
  batchSize: number,
  maxLength: number,
): { metric: number; auc: number; batches: Sample[][] } {
  let metricSum = 0;
  const batches: Sample[][] = [];
  const scores: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i + batchSize <= samples.length; i += batchSize) {
    batches.push(samples.slice(i, i + batchSize));
    const batch = collate(batches.at(-1)!, task.inputShapes([maxLength]), task.labelShape([maxLength]));
    tf.tidy(() => {
      const predictions = task.forward(encoder, { head }, batch.inputs, false);
      metricSum += task.metric(batch.labels, predictions).dataSync()[0]!;
      if (predictions.shape.length === 2 && predictions.shape[1] === 1) {
        scores.push(...predictions.dataSync());
        labels.push(...batch.labels.dataSync());
      }
    });
    disposeBatch(batch);
  }
  return {
    batches,
    metric: metricSum / Math.max(1, batches.length),
    auc:
      scores.length > 0
        ? rocAuc(
            scores.filter((_, i) => labels[i]! > 0.5),
            scores.filter((_, i) => labels[i]! <= 0.5),
          )
        : Number.NaN,
  };
}
