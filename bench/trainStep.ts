import * as tf from '@tensorflow/tfjs';
import { pathToFileURL } from 'node:url';
import { selectBackend, type BackendChoice } from '../models/backend.ts';
import { buildFrameEncoder, type FrameEncoderOptions } from '../models/frameEncoder.ts';
import { median } from './median.ts';

type ProfileInfo = Awaited<ReturnType<typeof tf.profile>>;

/** One measured line of the bench; the keys `bench/pytorch_train_step.py` prints too. */
export interface TrainStepRow {
  /** tfjs backend the step ran on. */
  backend: string;
  /** Samples per step. */
  batch: number;
  /** Input frame shape `[h, w, c]`. */
  inputShape: [number, number, number];
  /** batch / median seconds of one step. */
  samplesPerSecond: number;
  /** Threads the backend computes with (wasm's thread pool; 1 for cpu). */
  threads: number;
  /** Median milliseconds of one step (wall clock). */
  msPerStep: number;
  /**
   * batch / median CPU seconds (user + system) of one step: on a machine other processes load, this tracks the work
   * done rather than the time slices granted.
   */
  cpuSamplesPerSecond: number;
}

/** One kernel of a profiled step, summed over its calls. */
export interface KernelRow {
  /** tfjs kernel name, e.g. `Conv2DBackpropInput`. */
  kernel: string;
  /** Milliseconds spent in it during the step. */
  ms: number;
  /** How many times it ran during the step. */
  count: number;
}

/** Options of {@link benchTrainStep}. */
export interface TrainStepOptions {
  /** Backend to run on. Default: env `TEMPO_BACKEND`, else `auto`. */
  backend?: BackendChoice;
  /** Encoder to train. Default: 64x64x3, width 16, 3 blocks, 64 features, batch norm (the video tasks' default). */
  encoder?: FrameEncoderOptions;
  /** Samples per step. Default 32. */
  batch?: number;
  /** Classes of the dense head on top of the encoder. Default 10. */
  classes?: number;
  /** Untimed steps first (kernel setup, Adam's slots). Default 3. */
  warmup?: number;
  /** Timed steps; the median is reported. Default 20. */
  steps?: number;
}

/** The encoder the video tasks train by default. */
export const DEFAULT_ENCODER: FrameEncoderOptions = {
  inputShape: [64, 64, 3],
  width: 16,
  blocks: 3,
  featureSize: 64,
  normalization: 'batch',
  seed: 1,
};

/** A prepared training step: the model, a fixed batch, Adam, and `step()` running one update. */
interface Step {
  run: () => Promise<void>;
  profile: () => Promise<ProfileInfo>;
  dispose: () => void;
}

/**
 * Samples/s of one Adam training step of {@link buildFrameEncoder} with a dense softmax head (cross-entropy against
 * fixed labels), after `warmup` untimed steps, median over `steps`. The same model, head, batch and optimizer as
 * `bench/pytorch_train_step.py`, so the two rows compare directly.
 *
 * @example
 * const [row] = await benchTrainStep({ backend: 'wasm', steps: 2, warmup: 1 });
 * row.samplesPerSecond > 0; // true
 */
export async function benchTrainStep(options: TrainStepOptions = {}): Promise<TrainStepRow[]> {
  const { batch = 32, warmup = 3, steps = 20 } = options;
  const encoder = options.encoder ?? DEFAULT_ENCODER;
  const info = await selectBackend({ backend: options.backend });
  const step = prepareStep(encoder, batch, options.classes ?? 10);
  try {
    for (let i = 0; i < warmup; i++) await step.run();
    const times: number[] = [];
    const cpuTimes: number[] = [];
    for (let i = 0; i < steps; i++) {
      const start = performance.now();
      const cpuStart = process.cpuUsage();
      await step.run();
      const cpu = process.cpuUsage(cpuStart);
      times.push(performance.now() - start);
      cpuTimes.push((cpu.user + cpu.system) / 1000);
    }
    const ms = median(times);
    const cpuMs = median(cpuTimes);
    return [
      {
        backend: info.name,
        batch,
        inputShape: encoder.inputShape,
        samplesPerSecond: round((batch * 1000) / ms),
        threads: info.threads,
        msPerStep: round(ms),
        cpuSamplesPerSecond: round((batch * 1000) / cpuMs),
      },
    ];
  } finally {
    step.dispose();
  }
}

/**
 * `tf.profile` of one training step (after a warm-up step), per kernel: total milliseconds and calls, slowest first.
 *
 * @example
 * const kernels = await profileTrainStep({ backend: 'wasm' });
 * kernels[0].kernel; // e.g. 'Conv2DBackpropInput'
 */
export async function profileTrainStep(options: TrainStepOptions = {}): Promise<KernelRow[]> {
  await selectBackend({ backend: options.backend });
  const step = prepareStep(options.encoder ?? DEFAULT_ENCODER, options.batch ?? 32, options.classes ?? 10);
  try {
    await step.run();
    return kernelTable(await step.profile());
  } finally {
    step.dispose();
  }
}

/**
 * Sums a profile's kernels by name, slowest first, with a `total` row last. Ops with a custom gradient (`fusedConv2d__op`)
 * show up as scopes around their kernels; they are left out so that no time counts twice.
 */
export function kernelTable(profile: ProfileInfo): KernelRow[] {
  const byName = new Map<string, KernelRow>();
  const kernels = profile.kernels.filter((k) => !k.name.endsWith('__op'));
  for (const k of kernels) {
    const row = byName.get(k.name) ?? { kernel: k.name, ms: 0, count: 0 };
    row.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    row.count += 1;
    byName.set(k.name, row);
  }
  const rows = [...byName.values()].sort((a, b) => b.ms - a.ms).map((r) => ({ ...r, ms: round(r.ms) }));
  const total = rows.reduce((sum, r) => sum + r.ms, 0);
  return [...rows, { kernel: 'total', ms: round(total), count: kernels.length }];
}

function prepareStep(encoderOptions: FrameEncoderOptions, batch: number, classes: number): Step {
  const encoder = buildFrameEncoder(encoderOptions);
  const head = tf.layers.dense({
    units: classes,
    kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
    name: 'head',
  });
  const output = head.apply(encoder.outputs[0]) as tf.SymbolicTensor;
  const model = tf.model({ inputs: encoder.inputs, outputs: output });
  const [x, labels] = tf.tidy(() => [
    tf.randomUniform([batch, ...encoderOptions.inputShape], 0, 1, 'float32', 3),
    tf.oneHot(
      tf.tensor1d(
        Int32Array.from({ length: batch }, (_, i) => i % classes),
        'int32',
      ),
      classes,
    ),
  ]);
  const optimizer = tf.train.adam(1e-3);
  const update = (): tf.Scalar | null =>
    optimizer.minimize(
      () => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
      true,
    );
  return {
    run: async () => {
      const loss = update();
      await loss?.data();
      loss?.dispose();
    },
    profile: () =>
      tf.profile(async () => {
        const loss = update();
        await loss?.data();
        loss?.dispose();
      }),
    dispose: () => {
      tf.dispose([x, labels]);
      optimizer.dispose();
      model.dispose();
    },
  };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.table(await benchTrainStep());
  console.table(await profileTrainStep());
}
