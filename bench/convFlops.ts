import * as tf from '@tensorflow/tfjs';
import { pathToFileURL } from 'node:url';
import { selectBackend } from '../models/backend.ts';
import { buildFrameEncoder, type FrameEncoderOptions } from '../models/frameEncoder.ts';

/** One measured line of the bench. */
export interface Row {
  /** tfjs backend the line ran on. */
  backend: string;
  /** What was timed. */
  what: string;
  /** Median milliseconds of one run. */
  ms: number;
  /** Achieved GFLOP/s (analytic FLOPs / time). */
  gflops: number;
  /** gflops / the same backend's 512x512 matMul GFLOP/s; 1 for the matMul line itself. */
  ofMatMul: number;
}

/** Options of {@link benchConvFlops}. */
export interface ConvFlopsOptions {
  /** Encoder to train. Default: 64x64x3 input, width 16, 3 blocks, 64 features (the video tasks' default). */
  encoder?: FrameEncoderOptions;
  /** Batch size of the training step. Default 32. */
  batch?: number;
  /** Also time a training step at batch `cpuBatch` on the plain JS cpu backend (and on the chosen one). Default true. */
  compareCpu?: boolean;
  /** Batch of the cpu comparison; small because cpu's conv gradients are ~300x slower than wasm's. Default 2. */
  cpuBatch?: number;
}

/**
 * How close a training step of {@link buildFrameEncoder} comes to the backend's own matMul speed: GFLOP/s of the step
 * (conv + dense forward FLOPs counted analytically, times 3 for forward + the two backward products) against GFLOP/s
 * of a 512x512 matMul measured in the same run. Runs on the backend {@link selectBackend} picks, then (optionally) on
 * cpu for one step.
 *
 * @example
 * console.table(await benchConvFlops({ compareCpu: false }));
 */
export async function benchConvFlops(options: ConvFlopsOptions = {}): Promise<Row[]> {
  const { batch = 32, compareCpu = true, cpuBatch = 2 } = options;
  const encoder = options.encoder ?? { inputShape: [64, 64, 3], width: 16, blocks: 3, featureSize: 64, seed: 1 };
  const info = await selectBackend();
  const rows = await benchOn(info.name, encoder, batch, 5);
  if (compareCpu && info.name !== 'cpu') {
    rows.push(...(await benchOn(info.name, encoder, cpuBatch, 3, false)));
    await tf.setBackend('cpu');
    try {
      rows.push(...(await benchOn('cpu', encoder, cpuBatch, 1, false)));
    } finally {
      await tf.setBackend(info.name);
    }
  }
  return rows;
}

async function benchOn(
  backend: string,
  encoder: FrameEncoderOptions,
  batch: number,
  reps: number,
  forward = true,
): Promise<Row[]> {
  const matMulMs = await timeMatMul(512, reps * 2);
  const matMulGflops = (2 * 512 ** 3) / matMulMs / 1e6;
  const model = buildFrameEncoder(encoder);
  const forwardFlops = countForwardFlops(model, batch);
  const stepMs = await timeTrainingStep(model, batch, reps);
  const forwardMs = forward ? await timeForward(model, batch, reps) : NaN;
  model.dispose();
  const row = (what: string, ms: number, flops: number): Row => {
    const gflops = flops / ms / 1e6;
    return { backend, what, ms: round(ms), gflops: round(gflops), ofMatMul: round(gflops / matMulGflops) };
  };
  return [
    row('matMul 512x512', matMulMs, 2 * 512 ** 3),
    ...(forward ? [row(`encoder forward, batch ${batch}`, forwardMs, forwardFlops)] : []),
    row(`encoder train step (Adam), batch ${batch}`, stepMs, 3 * forwardFlops),
  ];
}

/** Multiply-adds x 2 of the conv and dense layers for one forward pass of `batch` inputs. */
export function countForwardFlops(model: tf.LayersModel, batch: number): number {
  let flops = 0;
  for (const layer of model.layers) {
    const kernel = layer.getWeights()[0];
    if (!kernel) continue;
    const out = layer.outputShape as number[];
    const className = layer.getClassName();
    if (className === 'Conv2D') {
      const [kh, kw, cin, cout] = kernel.shape;
      flops += 2 * batch * out[1] * out[2] * kh * kw * cin * cout;
    } else if (className === 'Dense') {
      const [units, next] = kernel.shape;
      flops += 2 * batch * units * next;
    }
  }
  return flops;
}

async function timeMatMul(n: number, reps: number): Promise<number> {
  const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
  const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
  const ms = await medianMs(reps, async () => {
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
  });
  tf.dispose([a, b]);
  return ms;
}

async function timeForward(model: tf.LayersModel, batch: number, reps: number): Promise<number> {
  const x = inputBatch(model, batch);
  const ms = await medianMs(reps, async () => {
    const y = model.predict(x) as tf.Tensor;
    await y.data();
    y.dispose();
  });
  x.dispose();
  return ms;
}

async function timeTrainingStep(model: tf.LayersModel, batch: number, reps: number): Promise<number> {
  const x = inputBatch(model, batch);
  const optimizer = tf.train.adam(1e-3);
  const ms = await medianMs(reps, async () => {
    const loss = optimizer.minimize(
      () => (model.apply(x, { training: true }) as tf.Tensor).square().mean() as tf.Scalar,
      true,
    );
    await loss?.data();
    loss?.dispose();
  });
  x.dispose();
  optimizer.dispose();
  return ms;
}

function inputBatch(model: tf.LayersModel, batch: number): tf.Tensor {
  const shape = model.inputs[0].shape.slice(1) as number[];
  return tf.randomUniform([batch, ...shape], 0, 1, 'float32', 3);
}

/** Median of `reps` timed runs after one untimed warm-up (which pays for kernel setup and Adam's slots). */
async function medianMs(reps: number, run: () => Promise<void>): Promise<number> {
  await run();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    await run();
    times.push(performance.now() - start);
  }
  times.sort((p, q) => p - q);
  return times[Math.floor(times.length / 2)];
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.table(await benchConvFlops());
}
