import { Command } from 'commander';
import { join } from 'node:path';
import { generateLabelledClips } from '../fixtures/syntheticVideos.ts';
import { probeAgainstRandomInit } from '../evaluation/evaluate.ts';
import { pretrainVideo } from '../recipes/pretrainVideo.ts';
import { evaluateTask } from '../evaluation/pretextMetrics.ts';
import { labelledFrames } from '../evaluation/videoLabels.ts';
import { readVideoLabels } from '../evaluation/videoLabels.ts';
import type { FrameFormat } from '../pipeline/frameFormat.ts';
import { TASKS, parseTaskList } from '../tasks/registry.ts';
import { stopSignal, useBackend } from './backend.ts';
import { nonNegativeInt, positiveInt, positiveNumber, printTable } from './options.ts';

interface DemoFlags {
  minutes: number;
  out: string;
  fixtures: string;
  seed: number;
  batch: number;
  lr: number;
}

/**
 * `tempo-ssl demo` (what `npm start` runs): generate the labelled fixture videos if missing, pretrain order
 * verification for a few minutes, then report pretext accuracy on held-out clips and a linear probe against a
 * random-init encoder.
 */
export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'the main job on built-in data: fixture videos -> order-verification pretraining -> held-out accuracy and probe vs random init',
    )
    .option('--minutes <M>', 'training time budget', positiveNumber, 2)
    .option('--out <DIR>', 'run folder', 'runs/demo')
    .option('--fixtures <DIR>', 'where the fixture videos are generated (and reused)', '.cache/fixtures/demo')
    .option('--seed <S>', 'seed of fixtures, weights and samplers', nonNegativeInt, 0)
    .option('--batch <B>', 'samples per step', positiveInt, 32)
    .option('--lr <rate>', 'Adam learning rate', positiveNumber, 3e-3)
    .action(async (flags: DemoFlags, command: Command) => {
      const format: FrameFormat = { width: 32, height: 32 };
      const clipOptions = { width: format.width, height: format.height, frames: 48, fps: 12, classes: 4 };
      console.log(`fixtures: generating (or reusing) synthetic labelled clips in ${flags.fixtures}`);
      const trainSet = await generateLabelledClips({
        dir: join(flags.fixtures, 'train'),
        seed: flags.seed + 1,
        count: 32,
        ...clipOptions,
      });
      const heldOut = await generateLabelledClips({
        dir: join(flags.fixtures, 'heldout'),
        seed: flags.seed + 1001,
        count: 16,
        ...clipOptions,
      });
      const backend = await useBackend(command);

      const stop = stopSignal();
      const budget = AbortSignal.timeout(flags.minutes * 60_000);
      console.log(
        `pretraining order verification for ${flags.minutes} min on ${trainSet.clips.length} clips (run folder ${flags.out})`,
      );
      const run = await pretrainVideo({
        videos: trainSet.clips.map((c) => c.path),
        tasks: parseTaskList('order'),
        steps: 1_000_000,
        batchSize: flags.batch,
        learningRate: flags.lr,
        seed: flags.seed,
        outDir: flags.out,
        // The demo's folder is its own: each `npm start` replaces the last demo run.
        force: true,
        checkpointEvery: 200,
        format,
        encoder: { featureSize: 64, width: 8, blocks: 3 },
        progress: 'auto',
        signal: AbortSignal.any([stop, budget]),
      });
      if (stop.aborted) return;

      console.log('evaluating on held-out clips');
      const order = await evaluateTask(
        TASKS.order,
        run.encoder,
        run.parts.order!,
        heldOut.clips.map((c) => c.path),
        format,
      );
      const readAll = async (pick: (set: typeof trainSet) => string) => [
        ...(await readVideoLabels(pick(trainSet))).videos,
        ...(await readVideoLabels(pick(heldOut))).videos,
      ];
      const position = await probeAgainstRandomInit(
        run.encoder,
        await labelledFrames(await readAll((s) => s.positionsFile), format, 2),
        { seed: flags.seed },
      );
      const shape = await probeAgainstRandomInit(
        run.encoder,
        await labelledFrames(await readAll((s) => s.labelsFile), format, 2),
        { seed: flags.seed },
      );
      console.log();
      printTable([
        {
          measure: 'order verification acc, held-out clips (chance 0.5)',
          pretrained: order.accuracy,
          'random init': '-',
        },
        {
          measure: 'linear probe acc, object position (quadrant, chance 0.25)',
          pretrained: position.accuracy,
          'random init': position.randomInitAccuracy,
        },
        {
          measure: 'kNN acc (k=5), object position',
          pretrained: position.knnAccuracy,
          'random init': position.randomInitKnnAccuracy,
        },
        {
          measure: 'linear probe acc, shape class (chance 0.25)',
          pretrained: shape.accuracy,
          'random init': shape.randomInitAccuracy,
        },
        {
          measure: 'kNN acc (k=5), shape class',
          pretrained: shape.knnAccuracy,
          'random init': shape.randomInitKnnAccuracy,
        },
      ]);
      console.log(
        `\n${run.steps} steps on ${backend.label} in ${run.last?.elapsedSeconds.toFixed(0) ?? 0} s; ${order.samples} held-out tuples; ` +
          `probes on ${position.trainCount} train / ${position.testCount} held-out frames, split by clip. Encoder: ${flags.out}/encoder`,
      );
      // Order needs where the shape is, not which shape it is: the position probe is the one pretraining should win.
    });
}
