import { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeReport } from '../recipes/report/writeReport.ts';
import { generateLabelledClips } from '../fixtures/syntheticVideos.ts';
import { evaluateEncoder, type EncoderEvaluation, type ProtocolScores } from '../evaluation/evaluateEncoder.ts';
import { splitLabelled } from '../evaluation/splitLabelled.ts';
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
  sampleThreads: boolean;
  json?: boolean;
}

/**
 * `tempo-ssl demo` (what `npm start` runs): generate the labelled fixture videos if missing, pretrain order
 * verification for a few minutes on 32 clips, then report pretext accuracy on 32 other clips and the evaluation
 * protocol (`evaluateEncoder`: linear, few-label, kNN, fine-tune; pretrained beside random init and supervised) on
 * those clips only, fit on frames of half of them and scored on the other half. It ends by writing the run's report
 * (`report.html`: curves, the position evaluation, a map of held-out frames coloured by the object's quadrant).
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
    .option('--no-sample-threads', 'make samples on the training thread (the speed comparison)')
    .option('--json', 'print one JSON object (the table rows, steps, report path) instead of the table')
    .action(async (flags: DemoFlags, command: Command) => {
      // With --json, stdout holds one JSON object: the progress lines go to stderr.
      const say = flags.json ? (line = '') => console.error(line) : (line = '') => console.log(line);
      const format: FrameFormat = { width: 32, height: 32 };
      const clipOptions = { width: format.width, height: format.height, frames: 48, fps: 12, classes: 4 };
      say(`fixtures: generating (or reusing) synthetic labelled clips in ${flags.fixtures}`);
      const trainSet = await generateLabelledClips({
        dir: join(flags.fixtures, 'train'),
        seed: flags.seed + 1,
        count: 32,
        ...clipOptions,
      });
      const heldOut = await generateLabelledClips({
        dir: join(flags.fixtures, 'heldout'),
        seed: flags.seed + 1001,
        count: 32,
        ...clipOptions,
      });
      const backend = await useBackend(command);

      const stop = stopSignal();
      const budget = AbortSignal.timeout(flags.minutes * 60_000);
      say(
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
        sampleThreads: flags.sampleThreads,
        format,
        encoder: { featureSize: 64, width: 8, blocks: 3 },
        progress: 'auto',
        signal: AbortSignal.any([stop, budget]),
      });
      if (stop.aborted) return;

      say('evaluating on held-out clips');
      const order = await evaluateTask(
        TASKS.order,
        run.encoder,
        run.parts.order!,
        heldOut.clips.map((c) => c.path),
        format,
      );
      // Probes see only clips pretraining never saw: fit on frames of some held-out clips, scored on the others.
      const evaluate = async (labelsFile: string, name: string) => {
        const { train, test } = splitLabelled(
          await labelledFrames((await readVideoLabels(labelsFile)).videos, format, 2),
          0.5,
          flags.seed,
        );
        say(
          `${name}: ${train.items.length} frames of ${new Set(train.groups).size} clips to fit, ${test.items.length} of ${new Set(test.groups).size} others to score`,
        );
        return evaluateEncoder(run.encoder, train, test, {
          seed: flags.seed,
          labelsPerClass: 5,
          draws: 3,
          log: (line) => say(`  ${line}`),
        });
      };
      const position = await evaluate(heldOut.positionsFile, 'object position (quadrant)');
      const shape = await evaluate(heldOut.labelsFile, 'shape class');
      const rows = (what: string, report: EncoderEvaluation) => {
        const { linear, fewLabel, knn, fineTune } = report.protocols;
        return [
          { measure: `${what}: linear probe`, ...scores(linear) },
          { measure: `${what}: linear, ${report.labelsPerClass} labels/class`, ...scores(fewLabel) },
          { measure: `${what}: kNN (k=20, cosine)`, ...scores(knn) },
          {
            measure: `${what}: fine-tune`,
            pretrained: fineTune.pretrained,
            'random init': '-',
            supervised: fineTune.randomInit,
          },
        ];
      };
      const table = [
        {
          measure: 'order verification acc, held-out clips (chance 0.5)',
          pretrained: order.accuracy,
          'random init': '-',
          supervised: '-',
        },
        ...rows('position (chance 0.25)', position),
        ...rows('shape (chance 0.25)', shape),
      ];
      // The position evaluation (the one order should win) goes in the run folder, where the report shows it.
      await writeFile(join(flags.out, 'evaluation.json'), JSON.stringify(position) + '\n');
      say('writing the report (an embedding map of held-out frames, coloured by the object quadrant)');
      const { path: report } = await writeReport({
        run: flags.out,
        labels: heldOut.positionsFile,
        points: 1000,
        seed: flags.seed,
      });
      if (flags.json) {
        console.log(JSON.stringify({ rows: table, steps: run.steps, backend: backend.label, report }));
        return;
      }
      say();
      printTable(table);
      say(
        `\n${run.steps} steps on ${backend.label} in ${run.last?.elapsedSeconds.toFixed(0) ?? 0} s; ${order.samples} held-out tuples; ` +
          `probes on ${heldOut.clips.length} clips never seen in pretraining, split by clip. Encoder: ${flags.out}/encoder`,
      );
      // Order needs where the shape is, not which shape it is: the position probe is the one pretraining should win.
      say(`report: ${report} (open it in a browser)`);
    });
}

function scores({ pretrained, randomInit, supervised }: ProtocolScores) {
  return { pretrained, 'random init': randomInit, supervised };
}
