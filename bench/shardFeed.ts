/**
 * Whether process-corpus shards feed the shared trainer faster than it trains: samples/s of `train` reading Arrow
 * shards (`shardSamples` -> shuffle buffer -> batcher -> pull queue -> collate, as `pretrain --shards` does)
 * against the same model, optimizer and batch size stepping over tensors collated from the same shards before the
 * clock starts, and against train() over the same samples held in memory (`ofInMemory`: what reading the shards
 * alone costs, train()'s own per-step work cancelling out). 1.0 means reading shards costs the trainer nothing;
 * rows per task (skip-gram: the
 * smallest samples and the cheapest step, the hardest to feed; NSP: two sequences a sample).
 *
 *   npx tsx bench/shardFeed.ts     # corpus from env TEMPO_DATA (default <repo>/../shared/data)/text
 *
 * Measured (session 9, one run each, same machine, load average about 1): `ratio` / `ofInMemory`
 *
 * | shards | skipgram | nsp |
 * |---|---|---|
 * | manifest version 2 (float32 columns) | 0.880 / 0.955 | 1.135 / 1.121 |
 * | manifest version 3 (narrow columns) | 0.874 / 1.066 | 1.021 / 1.020 |
 *
 * Reading shards costs the trainer nothing against the same samples in memory; skip-gram's `ratio` below 1 is
 * train()'s own per-step work on its 9 ms step (train() over in-memory samples: 0.82-0.92 of the bare loop).
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { firstValueFrom, from, map, take, toArray } from 'rxjs';
import { Rng } from '../core/rng.ts';
import { shuffleBuffer } from '../core/shuffleBuffer.ts';
import { selectBackend } from '../models/backend.ts';
import { buildTextEncoder } from '../models/textEncoder.ts';
import { batchSamples, collate, disposeBatch } from '../pipeline/batchSamples.ts';
import { processCorpus } from '../recipes/processCorpus.ts';
import { shardSamples } from '../recipes/shards.ts';
import { buildTextTask } from '../recipes/textTasks.ts';
import type { TaskName } from '../tasks/registry.ts';
import { resolveTextTaskConfig } from '../tasks/text/textTaskConfig.ts';
import { readLines } from '../text/readCorpus.ts';
import { resolveCorpusInputs } from '../text/resolveCorpusInputs.ts';
import { WordPiece } from '../text/tokenizers/WordPiece.ts';
import { train, type TrainTask } from '../training/trainer.ts';

/** One line of the bench. */
export interface ShardFeedRow {
  task: string;
  feed: string;
  steps: number;
  samplesPerSecond: number;
  /** samples/s against the tensors built beforehand for the same task. */
  ratio: number;
  /** Reading shards only: samples/s against train() over the same samples held in memory. */
  ofInMemory?: number;
}

/** Options of {@link benchShardFeed}. */
export interface ShardFeedOptions {
  dataDir?: string;
  /** Timed steps of each side (after `warmup`). Default 60. */
  steps?: number;
  warmup?: number;
  batchSize?: number;
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Runs the bench; returns no row (with a message) when the corpus is absent. */
export async function benchShardFeed(options: ShardFeedOptions = {}): Promise<ShardFeedRow[]> {
  const { steps = 60, warmup = 10, batchSize = 64 } = options;
  const corpus = join(options.dataDir ?? process.env.TEMPO_DATA ?? join(repoRoot, '..', 'shared', 'data'), 'text');
  if (!existsSync(corpus)) {
    console.log(`bench/shardFeed: skipped, no corpus at ${corpus} (set TEMPO_DATA to the folder holding text/)`);
    return [];
  }
  await selectBackend();
  // One book is enough to feed a few hundred steps.
  const files = (await resolveCorpusInputs(corpus)).slice(0, 1);
  const dir = await mkdtemp(join(tmpdir(), 'tempo-bench-shardfeed-'));
  try {
    const tokenizer = await WordPiece.train(readLines(files, { onInvalid: 'skip' }).pipe(map((l) => l.text)), {
      vocabSize: 4000,
    });
    const tokenizerPath = join(dir, 'tokenizer.json');
    await tokenizer.save(tokenizerPath);
    const tasks: TaskName[] = ['skipgram', 'nsp'];
    const shards = join(dir, 'shards');
    await processCorpus({ text: files, tasks, tokenizer: tokenizerPath, outDir: shards, onInvalid: 'skip' });
    const config = resolveTextTaskConfig({});
    const rows: ShardFeedRow[] = [];
    for (const name of tasks) {
      // As pretrain --shards makes them: no corpus counts (the samples already hold their negatives).
      const { task } = buildTextTask(name, tokenizer, config);
      const encoderOptions = { vocabSize: tokenizer.vocabSize, maxLength: config.maxLength, seed: 1 };
      const item = [config.maxLength];
      const fromShards = (valve?: Parameters<typeof shardSamples>[2]) =>
        shardSamples(shards, name, valve).pipe(shuffleBuffer({ rng: new Rng(2), bufferSize: 4096 }));

      const batches = (
        await firstValueFrom(fromShards().pipe(batchSamples(batchSize), take(steps + warmup), toArray()))
      ).map((b) => collate(b, task.inputShapes(item), task.labelShape(item)));
      const encoder = buildTextEncoder(encoderOptions);
      const parts = task.build(encoder, new Rng(3));
      const optimizer = tf.train.adam(1e-3);
      const models = [encoder, parts.head, ...Object.values(parts.extra ?? {})];
      const variables = models.flatMap((m) => m.trainableWeights.map((w) => w.read() as tf.Variable));
      let started = 0;
      for (const [i, batch] of batches.entries()) {
        if (i === warmup) started = performance.now();
        const loss = optimizer.minimize(
          () => task.loss(batch.labels, task.forward(encoder, parts, batch.inputs, true)),
          true,
          variables,
        )!;
        await loss.data();
        loss.dispose();
      }
      const baseline = (steps * batchSize) / ((performance.now() - started) / 1000);
      batches.forEach(disposeBatch);
      models.forEach((m) => m.dispose());
      optimizer.dispose();

      // The same train() over the same samples, once held in memory and once read from the shards: their ratio
      // is what reading shards costs the trainer (train()'s own per-step work cancels out).
      const held = await firstValueFrom(fromShards().pipe(take((steps + warmup) * batchSize), toArray()));
      const timeTrain = async (samples: TrainTask['samples']): Promise<number> => {
        const live = buildTextEncoder(encoderOptions);
        let liveStart = 0;
        const result = await train({
          encoder: live,
          itemShape: item,
          steps: steps + warmup,
          batchSize,
          tasks: [{ task, samples }],
          onStep: (m) => {
            if (m.step === warmup) liveStart = performance.now();
          },
        });
        const rate = (steps * batchSize) / ((performance.now() - liveStart) / 1000);
        Object.values(result.heads).forEach((h) => h.dispose());
        live.dispose();
        return rate;
      };
      const inMemory = await timeTrain(() => from(held));
      const read = await timeTrain((_epoch, valve) => fromShards({ valve }));
      const round = (x: number): number => Math.round(x * 1000) / 1000;
      rows.push(
        { task: name, feed: 'tensors built beforehand', steps, samplesPerSecond: Math.round(baseline), ratio: 1 },
        {
          task: name,
          feed: 'train() over samples held in memory',
          steps,
          samplesPerSecond: Math.round(inMemory),
          ratio: round(inMemory / baseline),
        },
        {
          task: name,
          feed: 'train() reading Arrow shards',
          steps,
          samplesPerSecond: Math.round(read),
          ratio: round(read / baseline),
          ofInMemory: round(read / inMemory),
        },
      );
    }
    return rows;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.table(await benchShardFeed());
}
