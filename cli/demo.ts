import { Command } from 'commander';
import { join } from 'node:path';
import { generateLabelledClips } from '../fixtures/syntheticVideos.ts';
import { probeAgainstRandomInit } from '../pipeline/evaluate.ts';
import { pretrainVideo } from '../pipeline/pretrainVideo.ts';
import { evaluateTask, labelledFrames, type FrameFormat } from '../pipeline/videoDataset.ts';
import { TASKS, parseTaskList } from '../tasks/registry.ts';
import { stopSignal, useBackend } from './backend.ts';
import { nonNegativeInt, positiveInt, positiveNumber, printTable } from './options.ts';

interface DemoFlags {
  minutes: number;
  out: string;
  fixtures: string;
  seed: number;
  batch: number;
}

/**
 * `tempo-ssl demo` (what `npm start` runs): generate the labelled fixture videos if missing, pretrain order
 * verification for a few minutes, then report pretext accuracy on held-out clips and a linear probe against a
 * random-init encoder.
 */
export function demoCommand(): Command {
  return new Command('demo')
    .description('the main job on built-in data: fixture videos -> order-verification pretraining -> held-out accuracy and probe vs random init')
    .option('--minutes <M>', 'training time budget', positiveNumber, 2)
    .option('--out <DIR>', 'run folder', 'runs/demo')
    .option('--fixtures <DIR>', 'where the fixture videos are generated (and reused)', '.cache/fixtures/demo')
    .option('--seed <S>', 'seed of fixtures, weights and samplers', nonNegativeInt, 0)
    .option('--batch <B>', 'samples per step', positiveInt, 16)
    .action(async (flags: DemoFlags, command: Command) => {
      const format: FrameFormat = { width: 48, height: 48 };
      const clipOptions = { width: format.width, height: format.height, frames: 48, fps: 12, classes: 4 };
      console.log(`fixtures: generating (or reusing) synthetic labelled clips in ${flags.fixtures}`);
      const trainSet = await generateLabelledClips({ dir: join(flags.fixtures, 'train'), seed: flags.seed + 1, count: 32, ...clipOptions });
      const heldOut = await generateLabelledClips({ dir: join(flags.fixtures, 'heldout'), seed: flags.seed + 1001, count: 16, ...clipOptions });
      const backend = await useBackend(command);

      const stop = stopSignal();
      const budget = AbortSignal.timeout(flags.minutes * 60_000);
      console.log(`pretraining order verification for ${flags.minutes} min on ${trainSet.clips.length} clips (run folder ${flags.out})`);
      const run = await pretrainVideo({
        videos: trainSet.clips.map((c) => c.path),
        tasks: parseTaskList('order'),
        steps: 1_000_000,
        batchSize: flags.batch,
        learningRate: 1e-3,
        seed: flags.seed,
        outDir: flags.out,
        checkpointEvery: 200,
        format,
        encoder: { featureSize: 64, width: 16, blocks: 3 },
        progress: 'auto',
        signal: AbortSignal.any([stop, budget]),
      });
      if (stop.aborted) return;

      console.log('evaluating on held-out clips');
      const order = await evaluateTask(TASKS.order, run.encoder, run.heads.order!, heldOut.clips.map((c) => c.path), format);
      const all = [...trainSet.clips, ...heldOut.clips].map((c) => ({ video: c.path, label: c.label }));
      const probe = await probeAgainstRandomInit(run.encoder, await labelledFrames(all, format), { seed: flags.seed });
      console.log();
      printTable([
        { measure: 'order verification acc, held-out clips (chance 0.5)', pretrained: order.accuracy, 'random init': '-' },
        { measure: `linear probe acc, shape class (chance 0.25)`, pretrained: probe.accuracy, 'random init': probe.randomInitAccuracy },
        { measure: 'kNN acc (k=5), shape class', pretrained: probe.knnAccuracy, 'random init': probe.randomInitKnnAccuracy },
      ]);
      console.log(
        `\n${run.steps} steps on ${backend.label} in ${run.last?.elapsedSeconds.toFixed(0) ?? 0} s; ${order.samples} held-out tuples; ` +
          `probe on ${probe.trainCount} train / ${probe.testCount} held-out frames (split by clip). Encoder: ${flags.out}/encoder`,
      );
    });
}
