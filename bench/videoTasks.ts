import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generateLabelledClips, runFfmpeg } from '../fixtures/syntheticVideos.ts';
import { selectBackend, type BackendChoice } from '../models/backend.ts';
import { evaluateEncoder, type EncoderEvaluation } from '../evaluation/evaluateEncoder.ts';
import { evaluateTask } from '../evaluation/pretextMetrics.ts';
import { labelledFrames, readVideoLabels } from '../evaluation/videoLabels.ts';
import { splitLabelled } from '../evaluation/splitLabelled.ts';
import type { FrameFormat } from '../pipeline/frameFormat.ts';
import { probeVideo } from '../pipeline/probeVideo.ts';
import { pretrainVideo } from '../recipes/pretrainVideo.ts';
import { TASKS, tasksReading, type TaskName } from '../tasks/registry.ts';
import type { PretextTask } from '../tasks/task.ts';
import type { Frame } from '../pipeline/frame.ts';

/** Options of {@link benchVideoTasks}. */
export interface VideoTasksBenchOptions {
  /** Tasks to run. Default: every task of the registry that reads frames or views (env BENCH_TASKS). */
  tasks?: TaskName[];
  /** Seeds of pretraining (weights, samplers) and of the probe's split; mean and spread are over them. Default 1,2,3 (env BENCH_SEEDS). */
  seeds?: number[];
  /** Optimizer steps of each pretraining. Default 150 (env BENCH_STEPS). */
  steps?: number;
  /** Samples per step. Default 16. */
  batchSize?: number;
  /** Frame side in pixels. Default 32. */
  size?: number;
  /** Folder holding `video/`. Default `$TEMPO_DATA`, else `<repo>/../shared/data`. */
  dataDir?: string;
}

/** One seed's figures for one task. */
export interface VideoTaskSeed {
  seed: number;
  /** Pretext accuracy on the held-out last quarter of the real videos after pretraining on their first three quarters. */
  pretextHeldOut: number | null;
  heldOutSamples: number;
  /** Steps the real-video pretraining made (a task that cannot sample fails instead). */
  realSteps: number;
  /** The evaluation protocol on frames of clips never used in pretraining: object position (quadrant) and shape class. */
  position: EncoderEvaluation['protocols'];
  shape: EncoderEvaluation['protocols'];
  seconds: number;
}

/** One line of the table: a task over the seeds, each figure `mean ± sd`. */
export interface VideoTaskRow {
  task: string;
  'pretext, held-out real': string;
  'position linear: pretrained': string;
  'random init': string;
  supervised: string;
  'shape linear: pretrained': string;
  'shape random init': string;
  'shape supervised': string;
  'position kNN: pretrained': string;
  'kNN random init': string;
  seeds: VideoTaskSeed[];
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Each video task, pretrained through `pretrainVideo` (the CLI's recipe) and measured where it did not train:
 *
 * - the evaluation protocol (`evaluateEncoder`: linear probe and weighted kNN, pretrained beside random init and
 *   supervised of the same architecture) on frames of 32 synthetic clips that pretraining never saw, fit on half of
 *   them and scored on the other half (split by clip), for the object's quadrant and the shape's class; pretraining
 *   uses 24 other synthetic clips;
 * - pretext accuracy on the last quarter of each shared real video after pretraining on the first three quarters.
 *
 * Every figure is the mean and standard deviation over `seeds` (pretraining weights and samplers, probe split).
 *
 * @example
 * const rows = await benchVideoTasks({ tasks: ['order'], seeds: [1], steps: 20 });
 */
export async function benchVideoTasks(options: VideoTasksBenchOptions = {}): Promise<VideoTaskRow[]> {
  const {
    tasks = (process.env.BENCH_TASKS?.split(',') as TaskName[] | undefined) ?? tasksReading('frames', 'views'),
    seeds = process.env.BENCH_SEEDS?.split(',').map(Number) ?? [1, 2, 3],
    steps = Number(process.env.BENCH_STEPS ?? 150),
    batchSize = 16,
    size = 32,
  } = options;
  const format: FrameFormat = { width: size, height: size };
  const cache = join(repoRoot, '.cache', 'bench-video-tasks');
  const clip = { width: size, height: size, frames: 48, fps: 12, classes: 4 };
  const pretrainClips = await generateLabelledClips({
    dir: join(cache, `pretrain-${size}`),
    seed: 1,
    count: 24,
    ...clip,
  });
  const probeClips = await generateLabelledClips({ dir: join(cache, `probe-${size}`), seed: 2, count: 32, ...clip });
  const probeSets = {
    position: await labelledFrames((await readVideoLabels(probeClips.positionsFile)).videos, format, 2),
    shape: await labelledFrames((await readVideoLabels(probeClips.labelsFile)).videos, format, 2),
  };
  const real = await realSplits(options.dataDir, join(cache, 'real'));
  const rows: VideoTaskRow[] = [];
  for (const name of tasks) {
    const perSeed: VideoTaskSeed[] = [];
    for (const seed of seeds) {
      const t0 = performance.now();
      const common = { tasks: [{ name, weight: 1 }], steps, batchSize, learningRate: 2e-3, seed, format };
      const encoder = { featureSize: 64, width: 8, blocks: 3 };
      const synthetic = await pretrainVideo({ ...common, encoder, videos: pretrainClips.clips.map((c) => c.path) });
      // A task with its own representation (colorization's encoder behind its Lab adapter, split-brain's two
      // halves) is probed through it; random init and supervised are then of that architecture.
      const probed = synthetic.parts[name]?.representation ?? synthetic.encoder;
      const protocol = async (set: keyof typeof probeSets) => {
        const { train, test } = splitLabelled(probeSets[set], 0.5, seed);
        const report = await evaluateEncoder(probed, train, test, { seed, draws: 1, labelsPerClass: 5 });
        return report.protocols;
      };
      const position = await protocol('position');
      const shape = await protocol('shape');
      synthetic.encoder.dispose();
      let pretextHeldOut: number | null = null;
      let heldOutSamples = 0;
      let realSteps = 0;
      if (real) {
        const run = await pretrainVideo({ ...common, encoder, videos: real.train });
        realSteps = run.steps;
        // A view task (tcn) reads single frames as one-camera moments: single-view, as `pretrain --video` runs it.
        const task = (TASKS[name] as PretextTask<never> as PretextTask<Frame>).configure({
          itemShape: [size, size, 3],
        });
        const result = await evaluateTask(task, run.encoder, run.parts[name]!, real.heldOut, format, { seed });
        heldOutSamples = result.samples;
        pretextHeldOut = result.samples > 0 ? result.accuracy : null;
        run.encoder.dispose();
      }
      const seconds = (performance.now() - t0) / 1000;
      perSeed.push({ seed, pretextHeldOut, heldOutSamples, realSteps, position, shape, seconds });
      console.error(JSON.stringify({ task: name, ...perSeed.at(-1) }));
    }
    const stat = (pick: (s: VideoTaskSeed) => number | null) => meanSd(perSeed.map(pick));
    rows.push({
      task: name,
      'pretext, held-out real': stat((s) => s.pretextHeldOut),
      'position linear: pretrained': stat((s) => s.position.linear.pretrained),
      'random init': stat((s) => s.position.linear.randomInit),
      supervised: stat((s) => s.position.linear.supervised),
      'shape linear: pretrained': stat((s) => s.shape.linear.pretrained),
      'shape random init': stat((s) => s.shape.linear.randomInit),
      'shape supervised': stat((s) => s.shape.linear.supervised),
      'position kNN: pretrained': stat((s) => s.position.knn.pretrained),
      'kNN random init': stat((s) => s.position.knn.randomInit),
      seeds: perSeed,
    });
  }
  return rows;
}

/** `mean ± sd` of the values that are numbers (3 decimals), or 'no samples' when none is. */
function meanSd(values: (number | null)[]): string {
  const xs = values.filter((x): x is number => x !== null);
  if (xs.length === 0) return 'no samples';
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  return `${mean.toFixed(3)} ± ${sd.toFixed(3)}`;
}

/**
 * The shared real videos cut in time (re-encoded once into `dir`): the first three quarters of each to pretrain
 * on, the last quarter held out.
 */
async function realSplits(dataDir: string | undefined, dir: string) {
  const source = join(dataDir ?? process.env.TEMPO_DATA ?? join(repoRoot, '..', 'shared', 'data'), 'video');
  if (!existsSync(source)) {
    console.error(
      `bench/videoTasks: held-out real-video accuracy skipped, no videos at ${source} (set TEMPO_DATA to the shared data folder)`,
    );
    return undefined;
  }
  const train: string[] = [];
  const heldOut: string[] = [];
  for (const name of readdirSync(source).sort()) {
    const input = join(source, name);
    const { duration } = await probeVideo(input);
    const cut = (duration ?? 0) * 0.75;
    const stem = basename(name, extname(name));
    const parts = [
      { out: join(dir, 'train', `${stem}.mp4`), range: ['-t', cut.toFixed(3)], list: train },
      { out: join(dir, 'heldout', `${stem}.mp4`), range: ['-ss', cut.toFixed(3)], list: heldOut },
    ];
    for (const { out, range, list } of parts) {
      if (!existsSync(out)) {
        await runFfmpeg(
          ['-i', input, ...range, '-an', '-c:v', 'libx264', '-crf', '18', '-pix_fmt', 'yuv420p', out],
          out,
        );
      }
      list.push(out);
    }
  }
  return { train, heldOut };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await selectBackend({ backend: (process.env.TEMPO_BACKEND as BackendChoice | undefined) ?? 'auto' });
  const t0 = performance.now();
  const rows = await benchVideoTasks();
  if (process.argv.includes('--json')) for (const row of rows) console.log(JSON.stringify(row));
  else console.table(rows.map(({ seeds: _, ...row }) => row));
  console.error(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
