import type * as tf from '@tensorflow/tfjs';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bufferCount, filter, firstValueFrom, from, toArray } from 'rxjs';
import { generateLabelledClips } from '../fixtures/syntheticVideos.ts';
import { selectBackend, type BackendChoice } from '../models/backend.ts';
import { decodeFrames } from '../pipeline/decodeFrames.ts';
import { buildFrameEncoder } from '../models/frameEncoder.ts';
import { probeAgainstRandomInit } from '../evaluation/evaluate.ts';
import type { Frame } from '../pipeline/frame.ts';
import { Rng } from '../core/rng.ts';
import { train } from '../training/trainer.ts';
import { metricOverBatches } from '../evaluation/pretextMetrics.ts';
import { labelledFrames } from '../evaluation/videoLabels.ts';
import { decodeOptionsOf, frameShape, type FrameFormat } from '../pipeline/frameFormat.ts';
import { TASKS, type TaskName } from '../tasks/registry.ts';
import type { PretextTask } from '../tasks/task.ts';

/** Options of {@link benchVideoTasks}. */
export interface VideoTasksBenchOptions {
  /** Tasks to run. Default: every video task of the registry. */
  tasks?: TaskName[];
  /** Optimizer steps of each pretraining. Default 150 (env BENCH_STEPS). */
  steps?: number;
  /** Samples per step. Default 16. */
  batchSize?: number;
  /** Frame side in pixels. Default 32. */
  size?: number;
  /** Folder holding `video/`. Default `$TEMPO_DATA`, else `<repo>/../shared/data`. */
  dataDir?: string;
}

/** One line of the table: a task's pretext accuracy and what its encoder is worth to a linear probe. */
export interface VideoTaskRow {
  task: string;
  /** Pretext metric over the last 20 steps of pretraining on the synthetic clips. */
  pretextTrain: number;
  /** Linear-probe accuracy (shape class) of the pretrained encoder, and of a random-init one of the same architecture. */
  probe: number;
  probeRandomInit: number;
  /** kNN accuracy of the same two encoders. */
  knn: number;
  knnRandomInit: number;
  /** Pretext accuracy on the held-out last quarter of each real video after training on the first three quarters of all. */
  [heldOut: `held-out ${string}`]: number | string;
  seconds: number;
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const VIDEO_TASKS: TaskName[] = ['order', 'vcop', 'frame-sim', 'tcn', 'tracking', 'cpc'];

/**
 * For each video task: a short pretraining on generated labelled shape clips, then a linear probe and kNN on the
 * shape class against a random-init encoder; and, when the shared real videos are present, pretext accuracy on the
 * held-out last quarter of each video after pretraining on the first three quarters of all of them.
 *
 * @example
 * console.table(await benchVideoTasks({ tasks: ['frame-sim'], steps: 20 }));
 */
export async function benchVideoTasks(options: VideoTasksBenchOptions = {}): Promise<VideoTaskRow[]> {
  const { tasks = VIDEO_TASKS, steps = Number(process.env.BENCH_STEPS ?? 150), batchSize = 16, size = 32 } = options;
  const format: FrameFormat = { width: size, height: size };
  const { clips } = await generateLabelledClips({
    dir: join(repoRoot, '.cache', 'fixtures', `bench-video-tasks-${size}`),
    seed: 1,
    count: 24,
    width: size,
    height: size,
    frames: 48,
  });
  const synthetic = await decodeAll(
    clips.map((c) => c.path),
    format,
  );
  const probeData = await labelledFrames(
    clips.map((c) => ({ video: c.path, label: c.label })),
    format,
    4,
  );
  const real = await realSplits(options.dataDir, format);
  const rows: VideoTaskRow[] = [];
  for (const name of tasks) {
    const t0 = performance.now();
    const task = TASKS[name] as PretextTask<Frame>;
    const row = { task: name } as VideoTaskRow;
    const pre = await pretrain(task, synthetic, format, steps, batchSize);
    row.pretextTrain = round(pre.trainMetric);
    const probe = await probeAgainstRandomInit(pre.encoder, probeData, { seed: 0 });
    Object.assign(row, {
      probe: round(probe.accuracy),
      probeRandomInit: round(probe.randomInitAccuracy),
      knn: round(probe.knnAccuracy),
      knnRandomInit: round(probe.randomInitKnnAccuracy),
    });
    pre.dispose();
    if (real) {
      const trained = await pretrain(task, real.train, format, steps, batchSize);
      for (const video of real.heldOut.keys()) {
        const result = await pretextAccuracy(task, trained.encoder, trained.head, real.heldOut, video, format);
        row[`held-out ${video}`] = result.samples ? `${round(result.accuracy)} (n=${result.samples})` : 'no samples';
      }
      trained.dispose();
    }
    row.seconds = round((performance.now() - t0) / 1000, 1);
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  return rows;
}

/** Every frame of each video, decoded once, grouped by video. */
async function decodeAll(videos: readonly string[], format: FrameFormat): Promise<Frame[][]> {
  const out: Frame[][] = [];
  for (const video of videos)
    out.push(await firstValueFrom(decodeFrames(video, decodeOptionsOf(format)).pipe(toArray())));
  return out;
}

/** The real videos split in time: the first three quarters of each to train on, the last quarter held out. */
async function realSplits(dataDir: string | undefined, format: FrameFormat) {
  const dir = join(dataDir ?? process.env.TEMPO_DATA ?? join(repoRoot, '..', 'shared', 'data'), 'video');
  if (!existsSync(dir)) {
    console.log(
      `bench/videoTasks: held-out real-video accuracy skipped, no videos at ${dir} (set TEMPO_DATA to the shared data folder)`,
    );
    return undefined;
  }
  const names = readdirSync(dir).sort();
  const decoded = await decodeAll(
    names.map((n) => join(dir, n)),
    format,
  );
  const cut = (frames: Frame[]) => Math.floor(frames.length * 0.75);
  return {
    train: decoded.map((frames) => frames.slice(0, cut(frames))),
    heldOut: new Map(names.map((n, i) => [n, decoded[i]!.slice(cut(decoded[i]!))])),
  };
}

/** Trains `task` alone on in-memory videos (their order shuffled every epoch); returns the encoder, head and last metrics. */
async function pretrain(
  task: PretextTask<Frame>,
  videos: Frame[][],
  format: FrameFormat,
  steps: number,
  batchSize: number,
) {
  const shape = frameShape(format);
  const encoder = buildFrameEncoder({ inputShape: shape, featureSize: 64, width: 8, blocks: 3, seed: 1 });
  const metrics: number[] = [];
  const result = await train({
    encoder,
    itemShape: shape,
    tasks: [
      {
        task: task as PretextTask<never>,
        samples: (_epoch, _valve, rng) => from(rng.shuffle([...videos]).flat()).pipe(task.sampler({ rng: rng.fork() })),
      },
    ],
    steps,
    batchSize,
    learningRate: 2e-3,
    seed: 3,
    onStep: (m) => metrics.push(m.tasks[task.name]!.accuracy),
  });
  const head = result.heads[task.name]!;
  const last = metrics.slice(-20);
  return {
    encoder,
    head,
    trainMetric: last.reduce((a, b) => a + b, 0) / Math.max(1, last.length),
    dispose: () => (encoder.dispose(), head.dispose()),
  };
}

/**
 * Pretext metric on the held-out clip of `video`: the sampler runs over every held-out clip with this one last
 * (tasks that draw negatives from other videos need them seen first), and only samples of `video` count.
 */
async function pretextAccuracy(
  task: PretextTask<Frame>,
  encoder: tf.LayersModel,
  head: tf.LayersModel,
  heldOut: Map<string, Frame[]>,
  video: string,
  format: FrameFormat,
) {
  const order = [...heldOut.keys()].filter((v) => v !== video).concat(video);
  const frames = order.flatMap((v) => heldOut.get(v)!);
  const source = heldOut.get(video)![0]?.source;
  const rng = new Rng(12345);
  const batches = await firstValueFrom(
    from(frames).pipe(
      task.sampler({ rng }),
      filter((s) => s.source === source),
      bufferCount(32),
      toArray(),
    ),
  );
  return metricOverBatches(task, encoder, { head }, batches, frameShape(format), 8);
}

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await selectBackend({ backend: (process.env.TEMPO_BACKEND as BackendChoice | undefined) ?? 'auto' });
  const tasks = process.env.BENCH_TASKS?.split(',') as TaskName[] | undefined;
  const t0 = performance.now();
  const rows = await benchVideoTasks({ tasks });
  console.table(rows);
  console.log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
