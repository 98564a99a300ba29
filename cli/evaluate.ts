import { Command, InvalidArgumentError } from 'commander';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OptionError } from '../core/errors.ts';
import { loadEncoder } from '../evaluation/evaluate.ts';
import { evaluateEncoder, type EncoderEvaluation } from '../evaluation/evaluateEncoder.ts';
import { labelledSetKind, readLabelledSet } from '../evaluation/readLabelledSet.ts';
import { splitLabelled } from '../evaluation/splitLabelled.ts';
import type { FrameFormat } from '../pipeline/frameFormat.ts';
import { readRunInfo } from '../recipes/pretrainVideo.ts';
import { useBackend } from './backend.ts';
import { nonNegativeInt, positiveInt, positiveNumber, printTable } from './options.ts';

interface EvaluateFlags {
  model: string;
  train: string;
  test?: string;
  testFraction: number;
  labelsPerClass: number;
  seed: number;
  layer: string;
  epochs: number;
  fewLabelSteps: number;
  lr: number;
  limit: number;
  json?: boolean;
  out?: string;
}

/** `tempo-ssl evaluate`: the one evaluation protocol, pretrained against random init and supervised. */
export function evaluateCommand(): Command {
  return new Command('evaluate')
    .description(
      'linear probe (all labels and N per class), weighted kNN and fine-tuning of an encoder, each beside the same architecture at random init and trained supervised',
    )
    .requiredOption('--model <DIR>', 'a pretrain --out folder, or a folder with model.json')
    .requiredOption(
      '--train <SET>',
      'labelled set: a video label CSV, a folder of class subfolders of PNG/JPEG images, or IDX images.gz,labels.gz (images first)',
    )
    .option('--test <SET>', 'held-out labelled set (same forms); without it a seeded split of --train')
    .option(
      '--test-fraction <F>',
      'share of --train held out when there is no --test (split by clip or item)',
      fraction,
      0.3,
    )
    .option('--labels-per-class <N>', 'labels per class of the few-label protocol', positiveInt, 10)
    .option('--seed <S>', 'seed of the split, the few-label draws and the supervised training', nonNegativeInt, 0)
    .option(
      '--layer <NAME>',
      "where the frozen feature is read: 'output' (the encoder's), a layer name (flattened, e.g. relu1), name:pool (globally averaged, e.g. relu0:pool), or 'best' (the block whose linear probe of the pretrained encoder scores best on a validation split of --train, read alike in all three encoders)",
      'output',
    )
    .option(
      '--epochs <N>',
      'epochs of supervised training and fine-tuning (best on a validation split kept)',
      positiveInt,
      10,
    )
    .option('--few-label-steps <N>', 'steps of supervised training on each few-label draw', positiveInt, 100)
    .option('--lr <rate>', 'Adam learning rate of supervised training and fine-tuning', positiveNumber, 1e-3)
    .option(
      '--limit <N>',
      'use at most N images of an IDX set (the first) or an image folder (a seeded draw)',
      positiveInt,
      5000,
    )
    .option('--json', 'print one JSON object instead of the table')
    .option('--out <FILE>', 'also write the JSON there (default: evaluation.json in a run folder)')
    .action(async (flags: EvaluateFlags, command: Command) => {
      if (flags.test && command.getOptionValueSource('testFraction') === 'cli')
        throw new OptionError('--test-fraction', flags.testFraction, 'left out when --test gives the held-out set');
      labelledSetKind(flags.train, '--train');
      if (flags.test) labelledSetKind(flags.test, '--test');
      await useBackend(command);
      const started = performance.now();
      const encoder = await loadEncoder(flags.model);
      const inputShape = encoder.inputs[0]!.shape.slice(1) as number[];
      const isRun = existsSync(join(flags.model, 'run.json'));
      const format: FrameFormat = isRun
        ? (await readRunInfo(flags.model)).format
        : { height: inputShape[0]!, width: inputShape[1]!, gray: inputShape[2] === 1 };
      const read = (spec: string, option: string, classes?: readonly string[]) =>
        readLabelledSet(spec, option, { inputShape, format, limit: flags.limit, classes });
      const labelled = await read(flags.train, '--train');
      const { train, test } = flags.test
        ? { train: labelled, test: await read(flags.test, '--test', labelled.classes) }
        : splitLabelled(labelled, flags.testFraction, flags.seed);
      const log = (line: string) => console.error(`evaluate: ${line}`);
      log(`${train.items.length} training / ${test.items.length} test items`);
      const report = await evaluateEncoder(encoder, train, test, {
        layer: flags.layer,
        labelsPerClass: flags.labelsPerClass,
        seed: flags.seed,
        training: { epochs: flags.epochs, learningRate: flags.lr },
        fewLabelSteps: flags.fewLabelSteps,
        log,
      });
      const seconds = (performance.now() - started) / 1000;
      const json = JSON.stringify({ ...report, seconds: Math.round(seconds) });
      const out = flags.out ?? (isRun ? join(flags.model, 'evaluation.json') : undefined);
      if (out) await writeFile(out, json + '\n');
      if (flags.json) console.log(json);
      else printReport(report, seconds, out);
    });
}

function fraction(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`expected a number between 0 and 1, got "${value}".`);
  return n;
}

function printReport(report: EncoderEvaluation, seconds: number, out: string | undefined): void {
  const { linear, fewLabel, knn, fineTune } = report.protocols;
  const spread = report.fewLabelSpread;
  const few = (mean: number, sd: number) => `${mean.toFixed(3)} ± ${sd.toFixed(3)}`;
  printTable([
    { protocol: 'linear probe, all labels', ...linear },
    {
      protocol: `linear probe, ${report.labelsPerClass} labels/class (mean ± sd of ${report.draws})`,
      pretrained: few(fewLabel.pretrained, spread.pretrained),
      randomInit: few(fewLabel.randomInit, spread.randomInit),
      supervised: few(fewLabel.supervised, spread.supervised),
    },
    { protocol: 'weighted kNN (cosine, k=20, T=0.07)', ...knn },
    { protocol: 'fine-tuning, all labels', ...fineTune, supervised: '(= randomInit)' },
  ]);
  if (report.layerChoice) {
    const scores = Object.entries(report.layerChoice.scores).map(([layer, score]) => `${layer} ${score.toFixed(3)}`);
    console.log(`\n--layer best chose ${report.layer} (validation accuracy: ${scores.join(', ')})`);
  }
  console.log(
    `\n${report.classes} classes, ${report.trainCount} training / ${report.testCount} test items, layer ${report.layer}, ` +
      `${seconds.toFixed(0)} s${out ? `; written to ${out}` : ''}`,
  );
}
