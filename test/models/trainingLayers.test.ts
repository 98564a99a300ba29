import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../models/backend.ts';
import { maxAbsDiff, on, randomTensor } from './_tensors.ts';
import { BatchNormalization, Conv2D } from '../../models/trainingLayers.ts';

// Tests switch the global backend, so none may run concurrently.
const serial = test.serial;

test.before(async () => {
  await selectBackend({ backend: 'wasm', log: () => {} });
});

/**
 * One training call of a layer (ours or the stock one, same weights) on a fixed input: the output, the gradients
 * of sum(output * dy) with respect to the input and every trainable weight, then every weight (moving statistics
 * included) after the call.
 */
function trainingCall(layer: tf.layers.Layer, inputShape: number[], seed: number): () => tf.Tensor[] {
  return () => {
    const x = randomTensor(inputShape, seed, 2, 0.5);
    if (!layer.built) layer.build(inputShape);
    // Non-trivial weights, the same for both layers.
    layer.setWeights(layer.getWeights().map((w, i) => randomTensor(w.shape, seed + 10 + i, 0.5, 1)));
    const dy = tf.tidy(() => randomTensor((layer.apply(x) as tf.Tensor).shape, seed + 1));
    const vars = layer.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
    const out = layer.apply(x, { training: true }) as tf.Tensor;
    const f = (input: tf.Tensor) => tf.sum(tf.mul(layer.apply(input, { training: true }) as tf.Tensor, dy));
    const { grads } = tf.variableGrads(() => f(x) as tf.Scalar, vars);
    const dx = tf.grad(f)(x);
    return [out, dx, ...vars.map((v) => grads[v.name]!), ...layer.getWeights()];
  };
}

interface Case {
  name: string;
  inputShape: number[];
  ours: () => tf.layers.Layer;
  stock: () => tf.layers.Layer;
}

const CASES: Case[] = [
  ...[
    [4, 6, 6, 3],
    [3, 5, 7, 4],
    [7, 5],
  ].map((inputShape) => ({
    name: `batch norm on [${inputShape}]`,
    inputShape,
    ours: () => new BatchNormalization({ momentum: 0.9 }),
    stock: () => tf.layers.batchNormalization({ momentum: 0.9 }),
  })),
  ...(
    [
      [1, 'same', false, 'linear'],
      [2, 'same', false, 'linear'],
      [3, 'valid', true, 'relu'],
      [2, 'valid', true, 'linear'],
    ] as const
  ).flatMap(([strides, padding, useBias, activation]) =>
    [
      [2, 8, 8, 3],
      [2, 7, 9, 2],
    ].map((inputShape) => {
      const config = { filters: 4, kernelSize: 3, strides, padding, useBias, activation };
      return {
        name: `conv2d ${inputShape.slice(1, 3).join('x')} stride ${strides} ${padding}${useBias ? ' bias' : ''} ${activation}`,
        inputShape,
        ours: () => new Conv2D(config),
        stock: () => tf.layers.conv2d(config),
      };
    }),
  ),
];

for (const c of CASES) {
  for (const backend of ['wasm', 'cpu']) {
    serial(
      `${c.name}: training output, gradients and moving statistics match the stock layer on ${backend}`,
      async (t) => {
        const ours = await on(backend, trainingCall(c.ours(), c.inputShape, 3));
        const stock = await on(backend, trainingCall(c.stock(), c.inputShape, 3));
        t.is(ours.length, stock.length);
        // The forward pass is the stock ops: bit for bit on batch norm; the conv may add its bias in another order.
        t.true(maxAbsDiff(ours[0]!, stock[0]!) <= 1e-5, `output differs by ${maxAbsDiff(ours[0]!, stock[0]!)}`);
        for (let i = 1; i < ours.length; i++) {
          const scale = Math.max(1, ...Array.from(stock[i]!, Math.abs));
          const diff = maxAbsDiff(ours[i]!, stock[i]!) / scale;
          t.true(diff <= 1e-5, `tensor ${i} differs by ${diff} (relative)`);
        }
        t.true(ours[1]!.some((v) => v !== 0));
        if (backend === 'wasm') {
          // And against the cpu backend's stock gradient (issue 11: within 1e-4).
          const cpu = await on('cpu', trainingCall(c.stock(), c.inputShape, 3));
          for (let i = 0; i < ours.length; i++) t.true(maxAbsDiff(ours[i]!, cpu[i]!) <= 1e-4, `tensor ${i} vs cpu`);
        }
      },
    );
  }
}

serial('the batch norm forward pass in training is the stock one bit for bit', async (t) => {
  const [ours] = await on('wasm', trainingCall(new BatchNormalization({}), [4, 6, 6, 3], 5));
  const [stock] = await on('wasm', trainingCall(tf.layers.batchNormalization({}), [4, 6, 6, 3], 5));
  t.deepEqual(Array.from(ours!), Array.from(stock!));
});

serial('saved models name the stock classes and load back as these', async (t) => {
  const input = tf.input({ shape: [8, 8, 3] });
  const y = new BatchNormalization({ name: 'bn' }).apply(
    new Conv2D({ filters: 2, kernelSize: 3, name: 'conv' }).apply(input),
  ) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: y });
  const json = JSON.stringify(model.toJSON(null, false));
  t.regex(json, /"class_name":"Conv2D"/);
  t.regex(json, /"class_name":"BatchNormalization"/);
  const loaded = await tf.models.modelFromJSON({ modelTopology: JSON.parse(json) });
  t.true(loaded.getLayer('conv') instanceof Conv2D);
  t.true(loaded.getLayer('bn') instanceof BatchNormalization);
  model.dispose();
  loaded.dispose();
});

serial('a training step through both layers leaks no tensor', (t) => {
  const input = tf.input({ shape: [8, 8, 3] });
  const y = new BatchNormalization({}).apply(new Conv2D({ filters: 2, kernelSize: 3 }).apply(input));
  const model = tf.model({ inputs: input, outputs: y as tf.SymbolicTensor });
  const optimizer = tf.train.adam(1e-2);
  const x = randomTensor([4, 8, 8, 3], 1);
  const step = () =>
    optimizer.minimize(() => tf.mean(tf.square(model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar);
  step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) step();
  t.is(tf.memory().numTensors, before);
  tf.dispose([x]);
  optimizer.dispose();
  model.dispose();
});
