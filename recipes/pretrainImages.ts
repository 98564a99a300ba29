import type * as tf from '@tensorflow/tfjs';
import { EMPTY, type Observable, concat, defer, tap, throwError } from 'rxjs';
import { NoSamplesError, OptionError, TaskSamplesError, type ImageError } from '../core/errors.ts';
import type { Rng } from '../core/rng.ts';
import type { Valve } from '../core/valve.ts';
import type { FrameEncoderOptions } from '../models/frameEncoder.ts';
import { frameShape, type FrameFormat } from '../pipeline/frameFormat.ts';
import { imageEpoch, listImages, type ImageRef } from '../pipeline/readImages.ts';
import type { Sample } from '../pipeline/sample.ts';
import { TASKS, taskReading, tasksReading, type TaskChoice } from '../tasks/registry.ts';
import type { PretextTask } from '../tasks/task.ts';
import type { Frame } from '../pipeline/frame.ts';
import { train, type RunOptions, type TrainResult } from '../training/trainer.ts';
import { runEncoderOptions, startRun, type BadInput, type RunInfo } from './pretrainVideo.ts';
import { finishRunFolder, prepareRunFolder } from './runFolder.ts';
import { labelImages, type ImageLabelOptions, type LabelledImages } from './imageLabels.ts';
import { saveModel } from '../models/modelIO.ts';
import { join } from 'node:path';

/** Options of `pretrainImages`. */
export interface ImagePretrainOptions extends RunOptions {
  /** Image inputs as the user gave them: PNG/JPEG files, IDX files (`.gz` too), folders (walked recursively), globs. */
  images: string[];
  /** Tasks and their loss weights; each must read single images (`reads: 'images'`). */
  tasks: TaskChoice[];
  /** The size every image is resized (cover, centre crop) to, and gray or RGB; `fps` does not apply. */
  format: FrameFormat;
  /** 'fail' (default): a bad image stops the run with its error; 'skip': it is counted, named in `badInputs` and left out. */
  onBadInput?: 'skip' | 'fail';
  /** Encoder architecture; its input shape comes from `format`. */
  encoder?: Omit<FrameEncoderOptions, 'inputShape'>;
  /** Images decoded at once. Default 4. */
  concurrency?: number;
  /** Start afresh in an `outDir` that holds a run, removing its run files (see `prepareRunFolder`). */
  force?: boolean;
  /**
   * Labels for tasks that learn from them (`supervised`): an IDX labels file, the labelled fraction, the classes
   * kept (see `labelImages`). Without `labels.labels`, an image folder's class subfolders label it.
   */
  labels?: Omit<ImageLabelOptions, 'seed'>;
}

/**
 * Pretrains the shared frame encoder on still images with tasks that read single images (rotation): lists the
 * images, builds the encoder (or restores it with `resume`), and trains, each task on its own stream of every
 * image in a seeded order per epoch. The encoder ends up in `outDir/encoder`; `run.json` records the format, so
 * `evaluate` reads labelled images at the same size.
 *
 * @throws OptionError naming a task that needs video frames in time order (order, vcop...), and why.
 * @example
 * const { encoder } = await pretrainImages({ images: ['train-images-idx3-ubyte.gz'], tasks: parseTaskList('rotation'),
 *   steps: 200, batchSize: 16, format: { width: 28, height: 28, gray: true }, outDir: 'runs/rot' });
 */
export async function pretrainImages(
  options: ImagePretrainOptions,
): Promise<TrainResult & { encoder: tf.LayersModel; badInputs: BadInput[]; imageCount: number }> {
  checkImageTasks(options.tasks);
  if (options.images.length === 0) throw new OptionError('--images', [], 'at least one image file, folder or IDX file');
  if (options.onBadInput !== undefined && options.onBadInput !== 'skip' && options.onBadInput !== 'fail') {
    throw new OptionError('--on-bad-input', options.onBadInput, "'skip' or 'fail'");
  }
  const { images: listed } = await listImages(options.images);
  const labelled = await runLabels(listed, options);
  const images = labelled?.images ?? listed;
  const bad = new Map<string, BadInput>();
  const onBadInput = (input: string, error: ImageError) => {
    const entry = bad.get(input) ?? { input, error: error.message.split('\n')[0]!, failures: 0 };
    entry.failures++;
    bad.set(input, entry);
  };
  const folder = options.outDir ? await prepareRunFolder(options.outDir, options) : undefined;
  const itemShape = frameShape(options.format);
  // With labels, run.json also records what the supervised head was trained on.
  const info: RunInfo & { labels?: Record<string, unknown> } = {
    format: { width: options.format.width, height: options.format.height, gray: options.format.gray },
    encoder: runEncoderOptions(options),
    tasks: options.tasks,
    videos: [],
    images: options.images,
    ...(labelled && {
      labels: { ...options.labels, labelled: labelled.labelled.length, classCount: labelled.classes },
    }),
  };
  const encoder = await startRun(info, options);
  const result = await train({
    ...options,
    encoder,
    itemShape,
    tasks: options.tasks.map(({ name, weight }) => {
      const task = taskReading(name, 'images').configure({
        itemShape,
        labels: labelled?.labels,
        classes: labelled?.classes,
        itemCount: images.length,
      });
      const samples = imageSamples(task, task.needsLabels ? labelled!.labelled : images, options.format, {
        batchSize: options.batchSize,
        badInputs: options.onBadInput,
        onBadInput,
        concurrency: options.concurrency,
        inputs: options.images,
      });
      return { task, weight, samples };
    }),
  }).catch(async (error: unknown) => {
    // Inputs that give no batch fail before the first step: leave no run files, as below.
    if (error instanceof NoSamplesError)
      await finishRunFolder(folder, { steps: 0, startStep: 0, stoppedBy: 'steps' }, options.images, 'images');
    encoder.dispose();
    throw error;
  });
  const stoppedBy = result.stoppedBy === 'data' && options.signal?.aborted ? 'signal' : result.stoppedBy;
  // A classifier trained beside the other tasks is what `classify` and `few-shot` read.
  if (options.outDir && labelled && result.steps > result.startStep) {
    for (const [name, head] of Object.entries(result.heads))
      if (needsLabels(name)) await saveModel(head, join(options.outDir, 'heads', name));
  }
  await finishRunFolder(folder, { ...result, stoppedBy }, options.images, 'images').catch((error: unknown) => {
    encoder.dispose();
    Object.values(result.heads).forEach((h) => h.dispose());
    throw error;
  });
  return { ...result, stoppedBy, encoder, badInputs: [...bad.values()], imageCount: images.length };
}

/** Whether the registry task `name` learns from labels. */
function needsLabels(name: string): boolean {
  const task: PretextTask<never> | undefined = (TASKS as Record<string, PretextTask<never>>)[name];
  return task?.needsLabels === true;
}

/**
 * The labels of a run whose tasks learn from labels, or that gives `labels`; undefined otherwise.
 *
 * @throws OptionError when labels are given with no task that reads them, or a task needs labels none gave.
 */
async function runLabels(
  images: readonly ImageRef[],
  options: ImagePretrainOptions,
): Promise<LabelledImages | undefined> {
  if (!options.tasks.some((t) => needsLabels(t.name))) {
    const { labels, labelledFraction, classes } = options.labels ?? {};
    const given = (
      [
        ['--labels', labels],
        ['--labelled-fraction', labelledFraction],
        ['--classes', classes?.join(',')],
      ] as const
    ).find(([, value]) => value !== undefined);
    if (given)
      throw new OptionError(given[0], given[1], 'used with a task that learns from labels (--tasks supervised,...)');
    return undefined;
  }
  return labelImages(images, { ...options.labels, seed: options.seed ?? 0 });
}

/**
 * Refuses tasks that cannot learn from still images, naming each and why: temporal tasks read frames of a video in
 * time order (or synchronized cameras), which images do not have; text tasks read text.
 *
 * @throws OptionError naming the tasks and those that read single images.
 */
export function checkImageTasks(tasks: readonly TaskChoice[]): void {
  const accepted = tasksReading('images');
  const refused = tasks.filter((t) => !accepted.includes(t.name));
  if (refused.length === 0) return;
  const why = refused
    .map((t) => {
      const reads = TASKS[t.name].reads;
      if (reads === 'frames' || reads === 'clips')
        return `${t.name} reads consecutive video frames (it needs time, which still images have not)`;
      if (reads === 'views') return `${t.name} reads synchronized cameras of one moment (give --views)`;
      return `${t.name} reads ${reads} (give --text or --dialogues)`;
    })
    .join('; ');
  throw new OptionError(
    '--tasks',
    refused.map((t) => t.name).join(','),
    `tasks that read single images with --images: ${accepted.join(', ')} (${why}; give --video for it)`,
  );
}

/** Options of `imageSamples`. */
export interface ImageSamplesOptions {
  /** Samples per batch: a first pass over the images that gives fewer fails naming the task. Default 1. */
  batchSize?: number;
  badInputs?: 'skip' | 'fail';
  onBadInput?: (input: string, error: ImageError) => void;
  concurrency?: number;
  /** The inputs as the user gave them, for error messages. */
  inputs?: readonly string[];
}

/**
 * A task's samples over images: what `train` wants as `TrainTask.samples`. Each epoch is every image once, in an
 * order shuffled by the epoch's generator (`imageEpoch`), through one instance of the task's sampler seeded by a
 * generator forked after it; so the same seed gives the same samples and `--resume` replays them. A first pass that
 * gives fewer than `batchSize` samples fails with a `NoSamplesError` (no image decoded) or a `TaskSamplesError`.
 *
 * @example
 * train({ ..., tasks: [{ task: rotation, samples: imageSamples(rotation, images, { width: 28, height: 28, gray: true }) }] });
 */
export function imageSamples(
  task: PretextTask<Frame>,
  images: readonly ImageRef[],
  format: FrameFormat,
  options: ImageSamplesOptions = {},
) {
  const { batchSize = 1 } = options;
  const names = options.inputs ?? images.map((image) => image.source);
  let passes = 0;
  return (_epoch: number, valve: Valve, rng: Rng): Observable<Sample> =>
    defer(() => {
      const first = passes++ === 0;
      const order = rng.fork();
      const sampler = task.sampler({ rng: rng.fork(), inputs: names });
      let frames = 0;
      let samples = 0;
      const epoch = imageEpoch(images, format, order, valve, options).pipe(
        tap(() => frames++),
        sampler,
        tap(() => samples++),
      );
      if (!first) return epoch;
      const checked = defer(() => {
        if (samples >= batchSize) return EMPTY;
        if (frames === 0) return throwError(() => new NoSamplesError(names, 'no image decoded (nothing to train on)'));
        return throwError(
          () =>
            new TaskSamplesError(
              task.name,
              names,
              `made ${samples} samples in a whole pass over the images (${frames} decoded), fewer than one batch of ${batchSize}`,
              'give more images, or a smaller --batch',
            ),
        );
      });
      return concat(epoch, checked);
    });
}
