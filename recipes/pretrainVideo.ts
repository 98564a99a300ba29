import type * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TASKS, taskReading, tasksReading, type TaskChoice } from '../tasks/registry.ts';
import { writeJson } from '../core/atomicWrite.ts';
import { buildFrameEncoder, type FrameEncoderOptions } from '../models/frameEncoder.ts';
import { NoSamplesError, OptionError, type VideoError } from '../core/errors.ts';
import type { CheckpointState } from '../training/checkpoint.ts';
import { isStreamInput } from '../pipeline/probeVideo.ts';
import { mkdir } from 'node:fs/promises';
import { train, type RunOptions, type TrainResult } from '../training/trainer.ts';
import type { VideoSamplesOptions } from '../pipeline/videoMix.ts';
import { videoSamples } from './videoSamples.ts';
import { SampleWorker } from './sampleWorker.ts';
import { finishRunFolder, prepareRunFolder } from './runFolder.ts';
import { frameShape } from '../pipeline/frameFormat.ts';
import { FrameCache } from '../pipeline/frameCache.ts';
import type { FrameFormat } from '../pipeline/frameFormat.ts';
import { checkViewGroups } from '../pipeline/viewGroups.ts';
import { singleCameraTask, viewSamples } from './viewSamples.ts';

/** Options of `pretrainVideo`. */
export interface VideoPretrainOptions extends RunOptions {
  /** Video files (already expanded from globs and folders), URLs or `-` (stdin); URLs and stdin are live: read once, forever. */
  videos: string[];
  /**
   * Instead of `videos`: groups of synchronized camera files, one group per recording (`--views`). Tasks that read
   * views (tcn) get moments of all cameras of a group (see `checkViewGroups`); frame tasks get every file as a video.
   */
  views?: string[][];
  /** 'fail' (default): a video that cannot be read stops the run with its error; 'skip': it is counted, named in `badInputs` and left out. */
  onBadInput?: 'skip' | 'fail';
  /** Reconnect and stall settings for live inputs. */
  live?: VideoSamplesOptions['live'];
  /** Tasks and their loss weights (see `parseTaskList`). */
  tasks: TaskChoice[];
  /** How frames are decoded. */
  format: FrameFormat;
  /** Encoder architecture; its input shape comes from `format`. */
  encoder?: Omit<FrameEncoderOptions, 'inputShape'>;
  /**
   * Megabytes of decoded frames kept in memory so that later epochs replay them rather than run ffmpeg again (see
   * `FrameCache`); 0 decodes every epoch. Default 256.
   */
  frameCacheMB?: number;
  /**
   * Make each task's samples on a worker thread (`SampleWorker`): decoding, caching, sampling and augmentation off
   * the training thread. Used for video files with tasks that read frames or images; live inputs and camera groups
   * stay on the training thread. Default true.
   */
  sampleThreads?: boolean;
  /** Start afresh in an `outDir` that holds a run, removing its run files (see `prepareRunFolder`). */
  force?: boolean;
}

/** What a run folder's `run.json` records, so `--resume`, `probe` and `embed` rebuild the same encoder and frames. */
export interface RunInfo {
  format: FrameFormat;
  encoder: FrameEncoderOptions;
  tasks: TaskChoice[];
  videos: string[];
  /** The `--views` groups (camera files of one recording each), when the run read synchronized cameras. */
  viewGroups?: string[][];
  /** The `--images` inputs as given, when the run read still images (`pretrainImages`; `videos` is then empty). */
  images?: string[];
}

/**
 * Pretrains the shared frame encoder on videos with the chosen tasks: builds the encoder (or restores it with
 * `resume`), streams each task's samples from ffmpeg, and trains. The encoder ends up in `outDir/encoder`.
 * Tasks that read views (tcn) get moments of synchronized cameras from `views`, or single frames of `videos` as
 * one-camera moments; frame tasks get frames of `videos` (or of every camera file).
 *
 * @example
 * const { encoder } = await pretrainVideo({ videos: ['a.mp4'], tasks: parseTaskList('order'), steps: 200,
 *   batchSize: 16, format: { width: 64, height: 64 }, outDir: 'runs/a' });
 */
export async function pretrainVideo(
  options: VideoPretrainOptions,
): Promise<TrainResult & { encoder: tf.LayersModel; badInputs: BadInput[] }> {
  const viewGroups = options.views ?? [];
  if (options.videos.length === 0 && viewGroups.length === 0)
    throw new OptionError('--video', [], 'at least one video file (or --views groups of synchronized cameras)');
  if (options.videos.length > 0 && viewGroups.length > 0)
    throw new OptionError(
      '--views',
      viewGroups.map((g) => g.join(',')),
      'given without --video (one source a run)',
    );
  if (options.onBadInput !== undefined && options.onBadInput !== 'skip' && options.onBadInput !== 'fail') {
    throw new OptionError('--on-bad-input', options.onBadInput, "'skip' or 'fail'");
  }
  const frameTasks = tasksReading('frames', 'views', 'images');
  const notVideo = options.tasks.filter((t) => !frameTasks.includes(t.name)).map((t) => t.name);
  if (notVideo.length > 0)
    throw new OptionError('--tasks', notVideo.join(','), `tasks that read video frames: ${frameTasks.join(', ')}`);
  const bad = new Map<string, BadInput>();
  const onBadInput = (input: string, error: VideoError) => {
    const entry = bad.get(input) ?? { input, error: error.message.split('\n')[0]!, failures: 0 };
    entry.failures++;
    bad.set(input, entry);
  };
  // Camera files are probed before anything is written, so a bad group fails with nothing to clean up.
  const groups =
    viewGroups.length > 0
      ? await checkViewGroups(viewGroups, { fps: options.format.fps, badInputs: options.onBadInput, onBadInput })
      : undefined;
  const videos = groups ? viewGroups.flat() : options.videos;
  // Each task made for this run before anything is written: a task that refuses the run's frames (too small, gray
  // for a colour task) fails with no run files left behind. A task that reads single images takes each frame as one.
  const setup = { itemShape: frameShape(options.format) };
  const configured = options.tasks.map(({ name, weight }) =>
    TASKS[name].reads === 'views'
      ? { name, weight, views: taskReading(name, 'views').configure(setup) }
      : {
          name,
          weight,
          frames: (TASKS[name].reads === 'images'
            ? taskReading(name, 'images')
            : taskReading(name, 'frames')
          ).configure(setup),
        },
  );
  const folder = options.outDir ? await prepareRunFolder(options.outDir, options) : undefined;
  const info: RunInfo = {
    format: options.format,
    encoder: runEncoderOptions(options),
    tasks: options.tasks,
    videos,
    ...(groups ? { viewGroups } : {}),
  };
  const encoder = await startRun(info, options);
  const liveSkips =
    options.videos.some(isStreamInput) && options.resume && options.outDir ? await resumePositions(options.outDir) : {};
  // One cache for every task of the run: tasks reading the same files share their frames.
  const frameCache = new FrameCache((options.frameCacheMB ?? 256) * 2 ** 20);
  // Worker threads for tasks on video files; a live stream is read once, so it stays where its frames arrive.
  const threaded = (options.sampleThreads ?? true) && !groups && !options.videos.some(isStreamInput);
  const workers: SampleWorker[] = [];
  const result = await train({
    ...options,
    encoder,
    itemShape: frameShape(options.format),
    tasks: configured.map(({ name, weight, views, frames }) => {
      const samplesOptions = {
        badInputs: options.onBadInput,
        onBadInput,
        live: options.live,
        liveSkip: (liveSkips[name] ?? 0) * options.batchSize,
        signal: options.signal,
        batchSize: options.batchSize,
        frameCache,
      };
      if (views) {
        const samples = groups
          ? viewSamples(views, groups, options.format, samplesOptions)
          : videoSamples(singleCameraTask(views), videos, options.format, samplesOptions);
        return { task: views, weight, samples };
      }
      if (threaded) {
        const worker = new SampleWorker(
          {
            task: name,
            videos,
            format: options.format,
            batchSize: options.batchSize,
            badInputs: options.onBadInput,
            // Each worker caches the frames of its own task.
            frameCacheBytes: ((options.frameCacheMB ?? 256) * 2 ** 20) / configured.length,
          },
          onBadInput,
        );
        workers.push(worker);
        return { task: frames!, weight, samples: worker.samples };
      }
      return { task: frames!, weight, samples: videoSamples(frames!, videos, options.format, samplesOptions) };
    }),
  })
    .finally(() => Promise.all(workers.map((w) => w.close())))
    .catch(async (error: unknown) => {
      // A task that cannot sample its inputs fails before the first step: leave no run files, as below.
      if (error instanceof NoSamplesError)
        await finishRunFolder(folder, { steps: 0, startStep: 0, stoppedBy: 'steps' }, options.videos, 'frames');
      throw error;
    });
  // A live stream that the signal cut short ends the data; the run was still stopped by the signal.
  const stoppedBy = result.stoppedBy === 'data' && options.signal?.aborted ? 'signal' : result.stoppedBy;
  await finishRunFolder(folder, { ...result, stoppedBy }, videos, 'frames').catch((error: unknown) => {
    encoder.dispose();
    Object.values(result.heads).forEach((h) => h.dispose());
    throw error;
  });
  return { ...result, stoppedBy, encoder, badInputs: [...bad.values()] };
}

/** An input that `--on-bad-input skip` left out. */
export interface BadInput {
  input: string;
  /** The first line of its error message. */
  error: string;
  /** How often it failed (once per epoch it was tried in). */
  failures: number;
}

/**
 * Batches each task had taken in the checkpoint's current epoch: a resumed live run passes over that many cheap
 * placeholders instead of skipping live frames (a live stream cannot be replayed, so skipping would only waste it).
 */
async function resumePositions(outDir: string): Promise<Record<string, number>> {
  const path = join(outDir, 'checkpoint', 'state.json');
  if (!existsSync(path)) return {};
  const state = JSON.parse(await readFile(path, 'utf8')) as CheckpointState;
  return Object.fromEntries(Object.entries(state.positions).map(([name, p]) => [name, p.index]));
}

/** Reads a run folder's `run.json`. */
export async function readRunInfo(dir: string): Promise<RunInfo> {
  return JSON.parse(await readFile(join(dir, 'run.json'), 'utf8')) as RunInfo;
}

/** The encoder a frame run builds: the defaults, the run's seed, its overrides, and the input shape of its frames. */
export function runEncoderOptions(options: {
  format: FrameFormat;
  seed?: number;
  encoder?: Partial<FrameEncoderOptions>;
}): FrameEncoderOptions {
  return {
    featureSize: 64,
    width: 16,
    blocks: 3,
    seed: options.seed ?? 0,
    ...options.encoder,
    inputShape: frameShape(options.format),
  };
}

/**
 * The encoder of a run about to train, and its `run.json` written: on `resume` the encoder is rebuilt exactly as
 * the run folder's `run.json` recorded it (the checkpoint's weights then replace its initial ones).
 */
export async function startRun(info: RunInfo, options: { resume?: boolean; outDir?: string }): Promise<tf.LayersModel> {
  if (options.resume && options.outDir && existsSync(join(options.outDir, 'run.json'))) {
    info.encoder = (await readRunInfo(options.outDir)).encoder;
  }
  const encoder = buildFrameEncoder(info.encoder);
  if (options.outDir) {
    await mkdir(options.outDir, { recursive: true });
    await writeJson(join(options.outDir, 'run.json'), info);
  }
  return encoder;
}
