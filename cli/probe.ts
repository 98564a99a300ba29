import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { OptionError } from '../core/errors.ts';
import { idxImages, loadEncoder, probeAgainstRandomInit } from '../evaluation/evaluate.ts';
import { readRunInfo } from '../recipes/pretrainVideo.ts';
import { labelledFrames } from '../evaluation/videoLabels.ts';
import { readVideoLabels } from '../evaluation/videoLabels.ts';
import type { FrameFormat } from '../pipeline/frameFormat.ts';
import { useBackend } from './backend.ts';
import { nonNegativeInt, positiveInt, printTable } from './options.ts';

interface ProbeFlags {
  model: string;
  videoLabels?: string;
  images?: string;
  labels?: string;
  limit: number;
  seed: number;
  json?: boolean;
}

/** `tempo-ssl probe`: linear probe of a pretrained encoder against a random-init one. */
export function probeCommand(): Command {
  return new Command('probe')
    .description(
      'freeze an encoder, fit a linear classifier on labelled frames or images, and compare with a random-init encoder',
    )
    .requiredOption('--model <DIR>', 'a pretrain --out folder, or a folder with model.json')
    .option('--video-labels <FILE>', 'CSV "video,label": frames of each video get its label; split by video')
    .option('--images <IDX>', 'images in IDX format (MNIST / Fashion-MNIST), gzipped or not')
    .option('--labels <IDX>', 'labels in IDX format, with --images')
    .option('--limit <N>', 'use at most N images', positiveInt, 5000)
    .option('--seed <S>', 'seed of the train/test split', nonNegativeInt, 0)
    .option('--json', 'print one JSON object with accuracy and randomInitAccuracy')
    .action(async (flags: ProbeFlags, command: Command) => {
      if (!flags.videoLabels === !flags.images) {
        throw new OptionError(
          '--video-labels / --images',
          flags.videoLabels ?? flags.images ?? null,
          'exactly one of --video-labels FILE or --images IDX --labels IDX',
        );
      }
      if (flags.images && !flags.labels)
        throw new OptionError('--labels', undefined, 'the labels IDX file that goes with --images');
      await useBackend(command);
      const encoder = await loadEncoder(flags.model);
      const inputShape = encoder.inputs[0]!.shape.slice(1) as number[];
      let data;
      if (flags.videoLabels) {
        const { videos } = await readVideoLabels(flags.videoLabels);
        const format: FrameFormat = existsSync(join(flags.model, 'run.json'))
          ? (await readRunInfo(flags.model)).format
          : { height: inputShape[0]!, width: inputShape[1]!, gray: inputShape[2] === 1 };
        data = await labelledFrames(videos, format);
      } else {
        data = await idxImages(flags.images!, flags.labels!, inputShape, flags.limit);
      }
      const result = await probeAgainstRandomInit(encoder, data, { seed: flags.seed });
      if (flags.json) console.log(JSON.stringify(result));
      else {
        printTable([
          { encoder: 'pretrained', 'linear probe acc': result.accuracy, 'kNN acc': result.knnAccuracy },
          {
            encoder: 'random init',
            'linear probe acc': result.randomInitAccuracy,
            'kNN acc': result.randomInitKnnAccuracy,
          },
        ]);
        console.log(`(${result.trainCount} train / ${result.testCount} held-out items)`);
      }
    });
}
