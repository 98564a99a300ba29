import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../models/backend.ts';
import { maxAbsDiff, on, randomTensor } from './_tensors.ts';
import { registerWasmTrainingKernels } from '../../models/wasmTrainingKernels.ts';
import { buildFrameEncoder } from '../../models/frameEncoder.ts';
import { BackendError, OptionError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';

// Every test switches the global backend, so none may run concurrently.
const serial = test.serial;

const quiet = (): void => {};

test.before(async () => {
  await selectBackend({ backend: 'wasm', log: quiet });
});

serial('auto skips the absent tfjs-node packages quietly and logs exactly one line', async (t) => {
  const lines: string[] = [];
  const info = await selectBackend({ backend: 'auto', log: (line) => lines.push(line) });
  t.is(info.name, 'wasm');
  t.is(tf.getBackend(), 'wasm');
  t.deepEqual(
    info.tried.map((a) => a.name),
    ['tfjs-node-gpu', 'tfjs-node', 'webgpu', 'wasm'],
  );
  t.truthy(info.tried[0].error);
  t.is(info.tried.at(-1)?.error, undefined);
  t.is(lines.length, 1);
  t.regex(lines[0], /^backend: wasm \(SIMD\)\. For speed on NVIDIA: npm install @tensorflow\/tfjs-node-gpu/);
  t.regex(info.hint, /@tensorflow\/tfjs-node\b/);
});

serial('calling selectBackend twice returns the same info and logs once', async (t) => {
  const lines: string[] = [];
  const first = await selectBackend({ backend: 'cpu', log: (line) => lines.push(line) });
  const second = await selectBackend({ backend: 'cpu', log: (line) => lines.push(line) });
  t.is(second, first);
  t.is(lines.length, 1);
  await selectBackend({ backend: 'wasm', log: quiet });
});

serial('TEMPO_BACKEND picks the backend when no option is given', async (t) => {
  process.env.TEMPO_BACKEND = 'cpu';
  try {
    const info = await selectBackend({ log: quiet });
    t.is(info.name, 'cpu');
    process.env.TEMPO_BACKEND = 'tpu';
    const error = await t.throwsAsync(selectBackend({ log: quiet }), { instanceOf: OptionError });
    t.regex(error.message, /TEMPO_BACKEND.*"tpu"/);
  } finally {
    delete process.env.TEMPO_BACKEND;
    await selectBackend({ backend: 'wasm', log: quiet });
  }
});

serial('a forced tensorflow backend that cannot load throws BackendError naming it and the fix', async (t) => {
  const error = await t.throwsAsync(selectBackend({ backend: 'tensorflow', log: quiet }), { instanceOf: BackendError });
  t.regex(error.message, /backend 'tensorflow' cannot load/);
  t.regex(error.message, /npm install @tensorflow\/tfjs-node-gpu/);
  t.is(tf.getBackend(), 'wasm');
});

serial('a forced webgpu backend that cannot load throws BackendError', async (t) => {
  const error = await t.throwsAsync(selectBackend({ backend: 'webgpu', log: quiet }), { instanceOf: BackendError });
  t.regex(error.message, /backend 'webgpu' cannot load.*Fix: npm install webgpu/);
});

serial('an unknown backend option throws OptionError', async (t) => {
  // @ts-expect-error deliberately invalid
  await t.throwsAsync(selectBackend({ backend: 'tpu', log: quiet }), {
    instanceOf: OptionError,
    message: /backend must be one of/,
  });
});

interface ConvCase {
  inputShape: [number, number, number, number];
  kernel: number;
  filters: number;
  stride: number | [number, number];
  padding: 'same' | 'valid';
  fused?: boolean;
}

/** Gradients of sum(conv2d(x, w) * dy) with respect to x and w. */
function convGrads(c: ConvCase, seed: number): () => tf.Tensor[] {
  return () => {
    const [, , , channels] = c.inputShape;
    const x = randomTensor(c.inputShape, seed) as tf.Tensor4D;
    const w = randomTensor([c.kernel, c.kernel, channels, c.filters], seed + 1) as tf.Tensor4D;
    const bias = randomTensor([c.filters], seed + 2) as tf.Tensor1D;
    const forward = (xx: tf.Tensor4D, ww: tf.Tensor4D): tf.Tensor4D =>
      c.fused
        ? tf.fused.conv2d({ x: xx, filter: ww, bias, strides: c.stride, pad: c.padding })
        : tf.conv2d(xx, ww, c.stride, c.padding);
    const dy = randomTensor(forward(x, w).shape, seed + 3);
    const [dx, dw] = tf.grads((xx: tf.Tensor, ww: tf.Tensor) =>
      forward(xx as tf.Tensor4D, ww as tf.Tensor4D)
        .mul(dy)
        .sum(),
    )([x, w]);
    return [dx, dw];
  };
}

const matchesCpu = test.macro({
  async exec(t, c: ConvCase) {
    const [wasmDx, wasmDw] = await on('wasm', convGrads(c, 7));
    const [cpuDx, cpuDw] = await on('cpu', convGrads(c, 7));
    t.true(maxAbsDiff(wasmDx, cpuDx) <= 1e-4, `dx differs by ${maxAbsDiff(wasmDx, cpuDx)}`);
    t.true(maxAbsDiff(wasmDw, cpuDw) <= 1e-4, `dw differs by ${maxAbsDiff(wasmDw, cpuDw)}`);
    t.true(cpuDw.some((v) => v !== 0));
  },
  title: (_, c: ConvCase) =>
    `the wasm conv2d gradient matches cpu: ${c.inputShape.slice(1, 3).join('x')} input, ${c.kernel}x${c.kernel} kernel, ` +
    `stride ${c.stride}, ${c.padding}${c.fused ? ', fused with bias' : ''}`,
});

// Issue 11: the input gradient (one conv over stride phases) and the filter gradient, on odd and even sizes.
for (const stride of [1, 2, 3]) {
  for (const padding of ['same', 'valid'] as const) {
    serial(matchesCpu, { inputShape: [2, 8, 8, 3], kernel: 3, filters: 4, stride, padding });
    serial(matchesCpu, { inputShape: [2, 7, 9, 3], kernel: 3, filters: 4, stride, padding });
  }
}
serial(matchesCpu, { inputShape: [2, 9, 9, 2], kernel: 2, filters: 3, stride: 2, padding: 'same' });
serial(matchesCpu, { inputShape: [3, 10, 10, 3], kernel: 5, filters: 2, stride: 3, padding: 'valid' });
serial(matchesCpu, { inputShape: [2, 11, 10, 3], kernel: 5, filters: 3, stride: 2, padding: 'same' });
serial(matchesCpu, { inputShape: [2, 9, 8, 2], kernel: 3, filters: 3, stride: [1, 2], padding: 'same' });
serial(matchesCpu, { inputShape: [2, 10, 11, 2], kernel: 3, filters: 3, stride: [3, 2], padding: 'valid' });
serial(matchesCpu, { inputShape: [2, 8, 8, 3], kernel: 3, filters: 4, stride: 2, padding: 'same', fused: true });
serial(matchesCpu, { inputShape: [2, 7, 7, 3], kernel: 3, filters: 4, stride: 3, padding: 'same', fused: true });

interface DepthwiseCase {
  inputShape: [number, number, number, number];
  kernel: number;
  multiplier: number;
  stride: number;
  padding: 'same' | 'valid';
}

/** Gradients of sum(depthwiseConv2d(x, w) * dy) with respect to x and w (wasm has no kernels for them). */
function depthwiseGrads(c: DepthwiseCase, seed: number): () => tf.Tensor[] {
  return () => {
    const x = randomTensor(c.inputShape, seed) as tf.Tensor4D;
    const w = randomTensor([c.kernel, c.kernel, c.inputShape[3], c.multiplier], seed + 1) as tf.Tensor4D;
    const forward = (xx: tf.Tensor, ww: tf.Tensor) =>
      tf.depthwiseConv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.stride, c.padding);
    const dy = randomTensor(forward(x, w).shape, seed + 3);
    return tf.grads((xx: tf.Tensor, ww: tf.Tensor) => forward(xx, ww).mul(dy).sum())([x, w]);
  };
}

const depthwiseMatchesCpu = test.macro({
  async exec(t, c: DepthwiseCase) {
    const [wasmDx, wasmDw] = await on('wasm', depthwiseGrads(c, 11));
    const [cpuDx, cpuDw] = await on('cpu', depthwiseGrads(c, 11));
    t.true(maxAbsDiff(wasmDx, cpuDx) <= 1e-4, `dx differs by ${maxAbsDiff(wasmDx, cpuDx)}`);
    t.true(maxAbsDiff(wasmDw, cpuDw) <= 1e-4, `dw differs by ${maxAbsDiff(wasmDw, cpuDw)}`);
    t.true(cpuDx.some((v) => v !== 0) && cpuDw.some((v) => v !== 0));
  },
  title: (_, c: DepthwiseCase) =>
    `the wasm depthwise conv2d gradients match cpu: ${c.inputShape.slice(1, 3).join('x')} input, ${c.kernel}x${c.kernel} ` +
    `kernel, multiplier ${c.multiplier}, stride ${c.stride}, ${c.padding}`,
});

// Issue 11: wasm lacks both depthwise gradient kernels.
for (const stride of [1, 2, 3]) {
  for (const padding of ['same', 'valid'] as const) {
    serial(depthwiseMatchesCpu, { inputShape: [2, 8, 8, 3], kernel: 3, multiplier: 1, stride, padding });
    serial(depthwiseMatchesCpu, { inputShape: [2, 7, 9, 2], kernel: 3, multiplier: 2, stride, padding });
  }
}
// tfjs's depthwise gradient itself refuses dilations above 1, so none is tested.

serial('matMul products with transposed operands (the dense gradients) match cpu on wasm, batched too', async (t) => {
  const products = () => {
    const out: tf.Tensor[] = [];
    for (const [transposeA, transposeB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ]) {
      // [m, k, n]: a narrow and a wide right operand.
      for (const [m, k, n] of [
        [4, 5, 6],
        [2, 3, 40],
      ]) {
        for (const batch of [[], [3]]) {
          const a = randomTensor([...batch, ...(transposeA ? [k, m] : [m, k])], 21);
          const b = randomTensor([...batch, ...(transposeB ? [n, k] : [k, n])], 22);
          out.push(tf.matMul(a, b, transposeA, transposeB));
        }
      }
    }
    return out;
  };
  const wasm = await on('wasm', products);
  const cpu = await on('cpu', products);
  for (let i = 0; i < cpu.length; i++) t.true(maxAbsDiff(wasm[i], cpu[i]) <= 1e-4, `product ${i} differs`);
});

/**
 * What wasm's stock `BatchMatMul` computes for transposed operands, term for term: each output sums the shared axis
 * sequentially in float32, in blocks of 48 terms whose sums are added in order (checked against the stock kernel
 * before it was replaced). The replacement must give exactly these bits.
 */
function stockBlockedProduct(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  ta: boolean,
  tb: boolean,
) {
  const f = Math.fround;
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let total = 0;
      for (let k0 = 0; k0 < k; k0 += 48) {
        let block = 0;
        for (let q = k0; q < Math.min(k, k0 + 48); q++) {
          block = f(block + f((ta ? a[q * m + i]! : a[i * k + q]!) * (tb ? b[j * k + q]! : b[q * n + j]!)));
        }
        total = f(total + block);
      }
      out[i * n + j] = total;
    }
  }
  return out;
}

serial(
  'matMul with a transposed operand on wasm is bit-identical to the stock kernel, across blocks of 48',
  async (t) => {
    await selectBackend({ backend: 'wasm', log: quiet });
    registerWasmTrainingKernels();
    for (const [m, k, n, ta, tb, rank3] of [
      [32, 32, 64, true, false, false],
      [32, 64, 100, false, true, false],
      [7, 150, 9, true, false, true],
      [5, 97, 6, true, true, false],
      [3, 48, 4, false, true, true],
      [4, 49, 3, true, false, false],
      // The dense layer's input gradient in the default encoder (computed as (W dy^T)^T).
      [32, 64, 4096, false, true, true],
    ] as const) {
      const lead = rank3 ? [1] : [];
      const a = randomTensor([...lead, ...(ta ? [k, m] : [m, k])], m + k);
      const b = randomTensor([...lead, ...(tb ? [n, k] : [k, n])], n + k);
      const product = tf.matMul(a, b, ta, tb);
      t.deepEqual(product.shape, [...lead, m, n]);
      const expected = stockBlockedProduct(a.dataSync() as Float32Array, b.dataSync() as Float32Array, m, k, n, ta, tb);
      t.deepEqual(product.dataSync(), expected, `m ${m} k ${k} n ${n} transposeA ${ta} transposeB ${tb}`);
      tf.dispose([a, b, product]);
    }
  },
);

/**
 * Batch norm written with elementary ops only (their stock gradients): the reference for the replaced
 * `FusedBatchNorm` gradient.
 */
function naiveBatchNorm(
  x: tf.Tensor,
  mean: tf.Tensor,
  variance: tf.Tensor,
  offset: tf.Tensor,
  scale: tf.Tensor,
  epsilon: number,
): tf.Tensor {
  const normalised = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, epsilon)));
  return tf.add(tf.mul(normalised, scale), offset);
}

// Without a scale tfjs cannot differentiate batchNorm at all (the engine saves the absent input for the gradient and
// fails, with the stock gradient too), so every case has one.
const batchNormMatchesNaive = test.macro({
  async exec(t, shape: number[]) {
    const grads = (fused: boolean) => () => {
      const x = randomTensor(shape, 31);
      const dy = randomTensor(shape, 32);
      const axes = shape.slice(0, -1).map((_, i) => i);
      const channels = [shape.at(-1)!];
      const offset = randomTensor(channels, 33);
      const scale = randomTensor(channels, 34);
      // The statistics come from x, as in a training step, so gradients also flow through them.
      const f = (xx: tf.Tensor, oo: tf.Tensor, ss: tf.Tensor) => {
        const { mean, variance } = tf.moments(xx, axes);
        const y = fused
          ? tf.batchNorm(xx, mean, variance, oo, ss, 1e-3)
          : naiveBatchNorm(xx, mean, variance, oo, ss, 1e-3);
        return y.mul(dy).sum();
      };
      return tf.grads(f)([x, offset, scale]);
    };
    for (const backend of ['wasm', 'cpu']) {
      const ours = await on(backend, grads(true));
      const naive = await on(backend, grads(false));
      for (let i = 0; i < naive.length; i++) {
        const diff = maxAbsDiff(ours[i], naive[i]);
        t.true(diff <= 1e-4, `${backend}: gradient ${i} differs by ${diff}`);
      }
    }
  },
  title: (_, shape: number[]) =>
    `the batch norm gradient (issue 11: no Tile) matches elementary ops on [${shape.join(', ')}]`,
});

serial(batchNormMatchesNaive, [4, 5, 6, 3]);
serial(batchNormMatchesNaive, [3, 7, 7, 4]);
serial(batchNormMatchesNaive, [6, 5]);

serial('the other gradients the encoder and heads need match cpu on wasm', async (t) => {
  const grads = () => {
    const x = randomTensor([2, 6, 6, 3], 11) as tf.Tensor4D;
    const y = randomTensor([2, 5], 12) as tf.Tensor2D;
    const m = randomTensor([5, 4], 13) as tf.Tensor2D;
    return tf.grads((xx: tf.Tensor, yy: tf.Tensor, mm: tf.Tensor) => {
      const pooled = tf.add(
        tf.maxPool(xx as tf.Tensor4D, 2, 2, 'same').sum(),
        tf.avgPool(xx as tf.Tensor4D, 3, 1, 'valid').sum(),
      );
      const gap = tf.mean(tf.relu(xx), [1, 2]); // [2, 3]
      const heads = tf.sigmoid(
        tf.matMul(tf.concat([gap, yy], 1).slice([0, 0], [2, 5]) as tf.Tensor2D, mm as tf.Tensor2D),
      );
      return tf.add(pooled, heads.square().sum());
    })([x, y, m]);
  };
  const wasm = await on('wasm', grads);
  const cpu = await on('cpu', grads);
  for (let i = 0; i < cpu.length; i++) t.true(maxAbsDiff(wasm[i], cpu[i]) <= 1e-4, `gradient ${i} differs`);
});

serial(
  'max pooling routes gradient from windows whose maximum is negative (wasm MaxPoolGrad regression)',
  async (t) => {
    const grad = () => [
      tf.grad((x: tf.Tensor) => tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid').sum())(
        tf.fill([1, 2, 2, 1], -1).add(tf.tensor4d([0, 0.5, 0, 0], [1, 2, 2, 1])),
      ),
    ];
    const [wasm] = await on('wasm', grad);
    t.deepEqual(Array.from(wasm), [0, 1, 0, 0]);
  },
);

serial('the wasm conv2d and matMul gradients leak no tensors or buffers', (t) => {
  registerWasmTrainingKernels();
  const c: ConvCase = { inputShape: [2, 7, 7, 3], kernel: 3, filters: 4, stride: 2, padding: 'same' };
  const step = () =>
    tf.tidy(() => {
      const [dx, dw] = convGrads(c, 3)();
      const a = randomTensor([5, 4], 5);
      const long = randomTensor([100, 3], 6); // a shared axis of 100: three blocks of the stock kernel
      return tf
        .addN([
          dx.sum(),
          dw.sum(),
          tf.matMul(a, a, true, false).sum(),
          tf.matMul(a, a, false, true).sum(),
          tf.matMul(long, long, true, false).sum(),
        ])
        .dataSync();
    });
  step(); // burn in
  const before = tf.memory();
  for (let i = 0; i < 5; i++) step();
  const after = tf.memory();
  t.is(after.numTensors, before.numTensors);
  t.is(after.numDataBuffers, before.numDataBuffers);
});

serial('a few Adam steps of the shared encoder with a sigmoid head run on wasm and the loss falls', async (t) => {
  await selectBackend({ backend: 'wasm', log: quiet });
  const encoder = buildFrameEncoder({ inputShape: [16, 16, 3], featureSize: 8, blocks: 2, seed: 1 });
  // A pair head like the video tasks': shared encoder on two frames, features concatenated, dense + sigmoid.
  const a = tf.input({ shape: [16, 16, 3] });
  const b = tf.input({ shape: [16, 16, 3] });
  const joined = tf.layers.concatenate().apply([encoder.apply(a), encoder.apply(b)] as tf.SymbolicTensor[]);
  const out = tf.layers
    .dense({ units: 1, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) })
    .apply(joined) as tf.SymbolicTensor;
  const model = tf.model({ inputs: [a, b], outputs: out });
  // Label: is frame a brighter than frame b. Learnable from pooled conv features.
  const rng = new Rng(5);
  const brightness = Array.from({ length: 16 }, () => [rng.uniform(0, 1), rng.uniform(0, 1)]);
  const [xa, xb, labels] = tf.tidy(() => [
    tf.stack(brightness.map(([v]) => tf.fill([16, 16, 3], v))),
    tf.stack(brightness.map(([, v]) => tf.fill([16, 16, 3], v))),
    tf.tensor2d(brightness.map(([u, v]) => [u > v ? 1 : 0])),
  ]);
  const optimizer = tf.train.adam(0.01);
  const losses: number[] = [];
  const before = tf.memory().numTensors;
  for (let i = 0; i < 30; i++) {
    const loss = optimizer.minimize(() => {
      const predicted = model.apply([xa, xb], { training: true }) as tf.Tensor;
      return tf.metrics.binaryCrossentropy(labels, predicted).mean() as tf.Scalar;
    }, true);
    if (!loss) throw new Error('minimize returned no loss');
    losses.push((await loss.data())[0]);
    loss.dispose();
  }
  t.is(tf.getBackend(), 'wasm');
  t.true(losses.every(Number.isFinite));
  t.true(losses.at(-1)! < losses[0] * 0.8, `loss went ${losses[0]} -> ${losses.at(-1)}`);
  // Adam makes its slot variables on the first step; after that the step is flat.
  t.true(tf.memory().numTensors - before <= model.trainableWeights.length * 2 + 2);
  tf.dispose([xa, xb, labels]);
  optimizer.dispose();
  model.dispose();
});
