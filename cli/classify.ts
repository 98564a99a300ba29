import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ModelIOError } from '../core/errors.ts';
import { accuracy } from '../evaluation/accuracy.ts';
import { loadEncoder } from '../evaluation/evaluate.ts';
import { labelledSetKind, readLabelledSet } from '../evaluation/readLabelledSet.ts';
import { predictClasses } from '../evaluation/trainClassifier.ts';
import { loadModel } from '../models/modelIO.ts';
import { readRunInfo } from '../recipes/pretrainVideo.ts';
import { useBackend } from './backend.ts';
import { positiveInt } from './options.ts';

interface ClassifyFlags {
  model: string;
  test: string;
  limit: number;
  json?: boolean;
}

/**
 * `tempo-ssl classify`: the test accuracy of the classifier a run trained (`--tasks supervised`, alone or beside
 * rotation as in S4L): the run's encoder and `heads/supervised/` on a labelled set.
 */
export function classifyCommand(): Command {
  return new Command('classify')
    .description(
      "accuracy of a run's own classifier (pretrain --tasks supervised[,rotation] --labels ...) on a labelled test set",
    )
    .requiredOption('--model <DIR>', 'a pretrain --out folder that trained the supervised task')
    .requiredOption(
      '--test <SET>',
      'labelled test set: IDX images.gz,labels.gz (images first) or a folder of class subfolders (sorted as the training folder)',
    )
    .option('--limit <N>', 'use at most N test images', positiveInt, 10000)
    .option('--json', 'print one JSON object')
    .action(async (flags: ClassifyFlags, command: Command) => {
      labelledSetKind(flags.test, '--test');
      const headDir = join(flags.model, 'heads', 'supervised');
      if (!existsSync(join(headDir, 'model.json')))
        throw new ModelIOError(
          flags.model,
          'no heads/supervised/: pretrain with --tasks supervised (and --labels) first',
        );
      await useBackend(command);
      const started = performance.now();
      const [encoder, head] = [await loadEncoder(flags.model), await loadModel(headDir)];
      const inputShape = encoder.inputs[0]!.shape.slice(1) as number[];
      const { format } = await readRunInfo(flags.model);
      const test = await readLabelledSet(flags.test, '--test', { inputShape, format, limit: flags.limit });
      const predicted = predictClasses(encoder, head, test.items);
      const counts = new Map<number, number>();
      for (const label of test.labels) counts.set(label, (counts.get(label) ?? 0) + 1);
      const report = {
        accuracy: accuracy(predicted, test.labels),
        majority: Math.max(...counts.values()) / test.labels.length,
        testCount: test.labels.length,
        seconds: Math.round((performance.now() - started) / 1000),
      };
      encoder.dispose();
      head.dispose();
      if (flags.json) return console.log(JSON.stringify(report));
      console.log(
        `accuracy ${report.accuracy.toFixed(3)} on ${report.testCount} test items (majority class ${report.majority.toFixed(3)})`,
      );
    });
}
