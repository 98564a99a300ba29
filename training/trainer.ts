import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Observable } from 'rxjs';
import type { PretextTask, TaskParts } from '../tasks/task.ts';
import type { Sample } from '../pipeline/sample.ts';
import { batchSamples, collate, disposeBatch, type TensorBatch } from '../pipeline/batchSamples.ts';
import { hasCheckpoint, saveCheckpoint, type CheckpointState } from './checkpoint.ts';
import { OptionError } from '../core/errors.ts';
import { saveModel, writeFileAtomic } from '../models/modelIO.ts';
import { createProgress, type Progress, type ProgressMode } from './progress.ts';
import { PullQueue } from '../pipeline/pullQueue.ts';
import { Rng } from '../core/rng.ts';
import type { Valve } from '../core/valve.ts';
import type { StepMetrics } from './stepMetrics.ts';
import { checkFinite } from './finiteCheck.ts';
import { restore } from './restoreRun.ts';
import { LarsOptimizer } from './lars.ts';
import { learningRateAt, momentumFactorAt, type LearningRateSchedule } from './schedules.ts';

/** One task of a training run. */
export interface TrainTask {
  task: PretextTask<never>;
  /** Weight of the task's loss in the total. Default 1. */
  weight?: number;
  /**
   * Epoch `epoch` of this task's samples. It must be deterministic for a given epoch and generator (so that
   * `--resume` can skip to the same place), and should pause its source when `valve` closes.
   */
  samples(epoch: number, valve: Valve, rng: Rng): Observable<Sample>;
}

/** Options of `train`. */
export interface TrainOptions {
  /** The shared encoder, `[batch, ...itemShape] -> [batch, featureSize]`; trained in place. */
  encoder: tf.LayersModel;
  /** Shape of one raw item (a frame `[H, W, C]`), from which each task derives its input shapes. */
  itemShape: number[];
  tasks: TrainTask[];
  /** Optimizer steps to run in total (a resumed run counts the steps already done). */
  steps: number;
  /** Samples per task per step. */
  batchSize: number;
  /** The optimizer: 'adam' (default) or 'lars' (momentum SGD with layer-wise trust ratios, as SimCLR; `LarsOptimizer`). */
  optimizer?: OptimizerName;
  /** Peak learning rate. Default 1e-3 for Adam; for LARS SimCLR's 0.3 x batch / 256. */
  learningRate?: number;
  /** 'constant' (default) or 'cosine' (to 0 at the last step); see `learningRateAt`. */
  lrSchedule?: LearningRateSchedule;
  /** Steps of linear learning-rate warm-up. Default 0. */
  warmupSteps?: number;
  /** 'constant' (default) or 'cosine': the EMA momentum of momentum encoders goes from its base to 1 (BYOL). */
  momentumSchedule?: LearningRateSchedule;
  /** Seed of heads and samplers. Default 0. */
  seed?: number;
  /** Folder for checkpoints, `metrics.jsonl` and the final `encoder/`. Without it nothing is written. */
  outDir?: string;
  /** Write a checkpoint every this many steps (and always at the end). Default 100. */
  checkpointEvery?: number;
  /** Continue from the checkpoint in `outDir` if there is one. */
  resume?: boolean;
  /** 'bar' on a TTY, 'lines' for logs, 'none' (default) for library use, 'auto' picks bar or lines. */
  progress?: ProgressMode;
  /** When aborted (SIGINT, SIGTERM), the current step finishes, a checkpoint is written and `train` returns. */
  signal?: AbortSignal;
  /** Called after every step with its metrics. */
  onStep?: (metrics: StepMetrics) => void;
  /** More steps to take after each step (an online probe, a report writer), after `onStep`. */
  hooks?: TrainHook[];
  /**
   * An online kNN monitor: every `every` steps (and at the last), `measure` scores the encoder (weighted kNN on a
   * held-out labelled set) and the figure is logged as `knnAccuracy` in that step's metrics.
   */
  knnMonitor?: KnnMonitor;
}

/** The optimizers `train` offers. */
export type OptimizerName = 'adam' | 'lars';

/** See `TrainOptions.knnMonitor`. */
export interface KnnMonitor {
  every: number;
  measure(encoder: tf.LayersModel): Promise<number>;
}

/** The options of `train` that a recipe (pretrain of video or text) passes through as they are. */
export type RunOptions = Pick<
  TrainOptions,
  | 'steps'
  | 'batchSize'
  | 'optimizer'
  | 'learningRate'
  | 'lrSchedule'
  | 'warmupSteps'
  | 'momentumSchedule'
  | 'seed'
  | 'outDir'
  | 'checkpointEvery'
  | 'resume'
  | 'progress'
  | 'signal'
  | 'onStep'
  | 'hooks'
  | 'knnMonitor'
>;

/** Something done after each step of a run, like a tfjs-layers callback; awaited before the next step. */
export interface TrainHook {
  onStep?(metrics: StepMetrics): void | Promise<void>;
  /** After a checkpoint holding every step up to `step` is written (a broker source acknowledges samples here). */
  onCheckpoint?(step: number): void | Promise<void>;
}

/** What `train` returns. */
export interface TrainResult {
  /** Steps completed in total (including those before a resume). */
  steps: number;
  /** The step the run started at (0, or the checkpoint's step on resume). */
  startStep: number;
  /** The last step's metrics, if any step ran. */
  last?: StepMetrics;
  /** Each task's head (also in `parts`). */
  heads: Record<string, tf.LayersModel>;
  /** Each task's trainable parts and state, as trained. */
  parts: Record<string, TaskParts>;
  /** Why the run ended. */
  stoppedBy: 'steps' | 'signal' | 'data';
}

/**
 * The one shared trainer: any mix of tasks on one encoder, each with its own head and loss weight. It pulls
 * one batch per task when it is ready for a step (nothing queues without bound), runs Adam (or LARS) on the weighted sum
 * of losses, logs metrics, and writes checkpoints that a killed run resumes from exactly: weights, optimizer
 * slots, step, generator state and each task's data position.
 *
 * @example
 * await train({ encoder, itemShape: [64, 64, 3], steps: 100, batchSize: 16, outDir: 'runs/a',
 *   tasks: [{ task: TASKS.order, samples: (epoch, valve, rng) => decodeFrames(video, { valve }).pipe(TASKS.order.sampler({ rng })) }] });
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  validateTrainOptions(options);
  const run = await prepareRun(options);
  const progress = createProgress(options.progress ?? 'none', options.steps, run.startStep);
  const hooks = runHooks(run, progress);
  let stoppedBy: TrainResult['stoppedBy'] = 'steps';
  let last: StepMetrics | undefined;
  try {
    for (let step = run.startStep; step < options.steps; step++) {
      if (options.signal?.aborted) {
        stoppedBy = 'signal';
        break;
      }
      // Timed from the data wait on, so samples/s is what the whole pipeline delivers.
      const t0 = performance.now();
      const batches = await nextBatches(run.queues, options.signal);
      if (batches === 'data' || batches === 'signal') {
        stoppedBy = batches;
        break;
      }
      const lr = learningRateOf(run, step + 1);
      const losses = runStep(run, batches, step + 1, lr);
      last = await recordStep(run, step + 1, losses, performance.now() - t0, lr);
      const monitor = options.knnMonitor;
      if (monitor && (last.step % monitor.every === 0 || last.step === options.steps))
        last.knnAccuracy = await monitor.measure(options.encoder);
      for (const hook of hooks) await hook.onStep?.(last);
    }
    const done = last?.step ?? run.startStep;
    if (options.outDir) {
      await writeCheckpoint(run, done);
      await saveModel(options.encoder, join(options.outDir, 'encoder'));
    }
    const heads = Object.fromEntries(Object.entries(run.parts).map(([name, p]) => [name, p.head]));
    return { steps: done, startStep: run.startStep, last, heads, parts: run.parts, stoppedBy };
  } finally {
    progress.stop();
    run.queues.forEach((q) => q.close());
    run.optimizer.dispose();
  }
}

interface Run {
  options: TrainOptions;
  parts: Record<string, TaskParts>;
  optimizer: tf.Optimizer & { learningRate: number };
  /** The peak learning rate the schedule scales. */
  learningRate: number;
  variables: tf.Variable[];
  queues: PullQueue<Sample[]>[];
  rng: Rng;
  startStep: number;
  elapsedSeconds: number;
  checkpointEvery: number;
  config: Record<string, unknown>;
}

function validateTrainOptions(options: TrainOptions): void {
  const positive = (name: string, value: unknown): void => {
    if (!Number.isInteger(value) || (value as number) < 1) throw new OptionError(name, value, 'a positive integer');
  };
  positive('--steps', options.steps);
  positive('--batch', options.batchSize);
  if (options.checkpointEvery !== undefined) positive('--checkpoint-every', options.checkpointEvery);
  if (options.tasks.length === 0) throw new OptionError('--tasks', [], 'at least one task');
  const names = options.tasks.map((t) => t.task.name);
  if (new Set(names).size !== names.length) throw new OptionError('--tasks', names, 'each task at most once');
  for (const t of options.tasks) {
    if (t.weight !== undefined && !(t.weight > 0))
      throw new OptionError(`weight of ${t.task.name}`, t.weight, 'a positive number');
  }
  if (options.resume && !options.outDir)
    throw new OptionError('--resume', true, 'used with --out DIR (the folder holding the checkpoint)');
  if (options.learningRate !== undefined && !(options.learningRate > 0))
    throw new OptionError('--lr', options.learningRate, 'a positive number');
  if (options.warmupSteps !== undefined && !(Number.isInteger(options.warmupSteps) && options.warmupSteps >= 0))
    throw new OptionError('--warmup-steps', options.warmupSteps, 'a whole number of steps, 0 or more');
  if (options.knnMonitor) positive('--monitor-every', options.knnMonitor.every);
}

/** Builds each task's parts, the optimizer and data queues, from a checkpoint when resuming. */
async function prepareRun(options: TrainOptions): Promise<Run> {
  const seed = options.seed ?? 0;
  const rng = new Rng(seed);
  const parts: Record<string, TaskParts> = {};
  for (const { task } of options.tasks) parts[task.name] = task.build(options.encoder, rng);
  const learningRate = options.learningRate ?? defaultLearningRate(options.optimizer ?? 'adam', options.batchSize);
  const optimizer = makeOptimizer(options.optimizer ?? 'adam', learningRate);
  // A fixed variable order: Adam keeps its slots by position, so a resumed run must list them the same way.
  const trained = Object.values(parts).flatMap((p) => [p.head, ...Object.values(p.extra ?? {})]);
  const variables = [options.encoder, ...trained].flatMap((m) =>
    m.trainableWeights.map((w) => w.read() as tf.Variable),
  );
  const config = {
    tasks: options.tasks.map((t) => ({ name: t.task.name, weight: t.weight ?? 1 })),
    batchSize: options.batchSize,
    itemShape: options.itemShape,
    learningRate,
    seed,
    // Only where they differ from the defaults, so that checkpoints of earlier runs still resume.
    ...(options.optimizer && options.optimizer !== 'adam' && { optimizer: options.optimizer }),
    ...(options.lrSchedule && options.lrSchedule !== 'constant' && { lrSchedule: options.lrSchedule }),
    ...(options.warmupSteps && { warmupSteps: options.warmupSteps }),
    ...(options.momentumSchedule &&
      options.momentumSchedule !== 'constant' && { momentumSchedule: options.momentumSchedule }),
  };
  const checkpointDir = options.outDir && join(options.outDir, 'checkpoint');
  let state: CheckpointState | undefined;
  if (options.resume && checkpointDir && hasCheckpoint(checkpointDir)) {
    state = await restore(checkpointDir, options.encoder, parts, optimizer, config);
  }
  const run: Run = {
    options,
    parts,
    optimizer,
    learningRate,
    variables,
    rng: state ? Rng.fromState(state.rngState) : rng,
    startStep: state?.step ?? 0,
    elapsedSeconds: state?.elapsedSeconds ?? 0,
    checkpointEvery: options.checkpointEvery ?? 100,
    config,
    queues: options.tasks.map((t, k) => {
      const makeSource = (epoch: number, valve: Valve): Observable<Sample[]> =>
        t.samples(epoch, valve, new Rng(seed * 7919 + k * 104729 + epoch)).pipe(batchSamples(options.batchSize));
      return new PullQueue(makeSource, { resumeFrom: state?.positions[t.task.name] });
    }),
  };
  if (options.outDir) {
    await mkdir(options.outDir, { recursive: true });
    await trimMetrics(join(options.outDir, 'metrics.jsonl'), state?.step ?? 0);
  }
  return run;
}

/** Drops metric lines past `step`: a killed run logged steps that its last checkpoint does not hold. */
async function trimMetrics(path: string, step: number): Promise<void> {
  const kept = existsSync(path)
    ? (await readFile(path, 'utf8')).split('\n').filter((line) => stepOf(line) <= step)
    : [];
  await writeFileAtomic(path, kept.map((line) => line + '\n').join(''));
}

/** The step of a metrics line; a line cut short by a kill counts as past every step. */
function stepOf(line: string): number {
  try {
    return (JSON.parse(line) as StepMetrics).step;
  } catch {
    return Infinity;
  }
}

/**
 * One batch from each task's queue. A stop signal while waiting (a slow or silent source) ends the wait at once;
 * batches already taken go back to their queues, so the checkpoint's data positions stay exact.
 */
async function nextBatches(
  queues: PullQueue<Sample[]>[],
  signal: AbortSignal | undefined,
): Promise<Sample[][] | 'data' | 'signal'> {
  const batches: Sample[][] = [];
  for (const queue of queues) {
    const stop = () => queue.cancelPending();
    signal?.addEventListener('abort', stop, { once: true });
    const batch = await queue.next();
    signal?.removeEventListener('abort', stop);
    if (!batch) {
      if (!signal?.aborted) return 'data';
      batches.forEach((b, k) => queues[k]!.putBack(b));
      return 'signal';
    }
    batches.push(batch);
  }
  return batches;
}

/** Adam (tfjs's) or LARS, at `learningRate`; the trainer sets the rate again before each step. */
function makeOptimizer(name: OptimizerName, learningRate: number): tf.Optimizer & { learningRate: number } {
  // tfjs's Adam reads its `learningRate` field at every update; the field is protected only in its typings.
  if (name === 'adam') return tf.train.adam(learningRate) as unknown as tf.Optimizer & { learningRate: number };
  return new LarsOptimizer(learningRate);
}

/** Adam's usual 1e-3; for LARS SimCLR's linear scaling, 0.3 x batch / 256. */
function defaultLearningRate(name: OptimizerName, batchSize: number): number {
  return name === 'adam' ? 1e-3 : (0.3 * batchSize) / 256;
}

/** The learning rate of `step` (1-based) under the run's schedule and warm-up. */
function learningRateOf(run: Run, step: number): number {
  const { lrSchedule, warmupSteps, steps } = run.options;
  return learningRateAt(step, { base: run.learningRate, schedule: lrSchedule, warmupSteps, totalSteps: steps });
}

/** One optimizer step on the weighted sum of the tasks' losses; returns `[total, loss_1, acc_1, monitors_1..., loss_2, ...]`. */
function runStep(run: Run, samples: Sample[][], step: number, lr: number): tf.Tensor1D {
  const { options } = run;
  run.optimizer.learningRate = lr;
  const batches: TensorBatch[] = options.tasks.map((t, k) =>
    collate(samples[k]!, t.task.inputShapes(options.itemShape), t.task.labelShape(options.itemShape)),
  );
  try {
    let perTask: tf.Scalar[] = [];
    const total = run.optimizer.minimize(
      () => {
        const weighted = options.tasks.map(({ task, weight = 1 }, k) => {
          const predictions = task.forward(options.encoder, run.parts[task.name]!, batches[k]!.inputs, true);
          const loss = task.loss(batches[k]!.labels, predictions);
          perTask.push(tf.keep(loss.clone()), tf.keep(task.metric(batches[k]!.labels, predictions)));
          for (const monitor of Object.values(task.monitors ?? {}))
            perTask.push(tf.keep(monitor(predictions, run.parts[task.name]!)));
          return tf.mul(loss, weight);
        });
        return tf.addN(weighted) as tf.Scalar;
      },
      true,
      run.variables,
    )!;
    // State that gradients do not train (momentum encoders, queues) moves after the weights have.
    const context = {
      step,
      steps: options.steps,
      momentumFactor: momentumFactorAt(step, options.momentumSchedule ?? 'constant', options.steps),
    };
    for (const { task } of options.tasks) run.parts[task.name]!.state?.afterStep?.(options.encoder, context);
    const out = tf.stack([total, ...perTask]) as tf.Tensor1D;
    tf.dispose([total, ...perTask]);
    perTask = [];
    return out;
  } finally {
    batches.forEach(disposeBatch);
  }
}

async function recordStep(
  run: Run,
  step: number,
  values: tf.Tensor1D,
  stepMs: number,
  lr: number,
): Promise<StepMetrics> {
  const numbers = await values.data();
  values.dispose();
  checkFinite(step, numbers, run.variables, lr);
  run.elapsedSeconds += stepMs / 1000;
  const tasks: StepMetrics['tasks'] = {};
  // [total, then per task: loss, metric, its monitors in order]
  let at = 1;
  for (const { task } of run.options.tasks) {
    const figures: StepMetrics['tasks'][string] = { loss: numbers[at++]!, accuracy: numbers[at++]! };
    for (const name of Object.keys(task.monitors ?? {})) figures[name] = numbers[at++]!;
    tasks[task.name] = figures;
  }
  const metrics: StepMetrics = {
    step,
    loss: numbers[0]!,
    tasks,
    samplesPerSecond: (run.options.batchSize * run.options.tasks.length * 1000) / Math.max(stepMs, 1e-3),
    elapsedSeconds: run.elapsedSeconds,
    lr,
  };
  return metrics;
}

/**
 * What happens after each step, in order, as tfjs-layers' callbacks: the step is logged to `metrics.jsonl`, the
 * caller's `onStep` and `hooks` see it, the progress display moves, and every `checkpointEvery` steps a checkpoint is
 * written (the last one is written when the run ends, whatever ended it).
 */
function runHooks(run: Run, progress: Progress): TrainHook[] {
  const { outDir, steps, onStep, hooks = [] } = run.options;
  const metricsLog: TrainHook = {
    onStep: (metrics) => appendFile(join(outDir!, 'metrics.jsonl'), JSON.stringify(metrics) + '\n'),
  };
  const checkpoints: TrainHook = {
    onStep: async ({ step }) => {
      if (step % run.checkpointEvery === 0 && step < steps) await writeCheckpoint(run, step);
    },
  };
  return [
    ...(outDir ? [metricsLog] : []),
    ...(onStep ? [{ onStep }] : []),
    ...hooks,
    { onStep: (metrics) => progress.update(metrics.step, metrics) },
    ...(outDir ? [checkpoints] : []),
  ];
}

async function writeCheckpoint(run: Run, step: number): Promise<void> {
  const positions: CheckpointState['positions'] = {};
  run.options.tasks.forEach(({ task }, k) => (positions[task.name] = run.queues[k]!.position));
  await saveCheckpoint(join(run.options.outDir!, 'checkpoint'), {
    encoder: run.options.encoder,
    parts: run.parts,
    optimizer: run.optimizer,
    state: {
      step,
      seed: run.options.seed ?? 0,
      rngState: run.rng.state,
      positions,
      elapsedSeconds: run.elapsedSeconds,
      config: run.config,
    },
  });
  for (const hook of run.options.hooks ?? []) await hook.onCheckpoint?.(step);
}
