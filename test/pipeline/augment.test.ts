import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import {
  augment,
  colorJitter,
  gaussianBlur,
  horizontalFlip,
  randomGrayscale,
  randomResizedCrop,
  simclrRecipe,
  type Recipe,
} from '../../pipeline/augment.ts';
import { OptionError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';

test.before(async () => {
  await tf.setBackend('cpu');
});

/** A `[batch, H, W, C]` batch of seeded uniform noise. */
function noise(shape: [number, number, number, number], seed = 1): tf.Tensor4D {
  const rng = new Rng(seed);
  return tf.tensor4d(
    Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.next()),
    shape,
  );
}

/** Runs a recipe and returns the output as nested arrays, disposing every tensor. */
function run(recipe: Recipe, input: tf.Tensor4D, seed: number): number[][][][] {
  const out = augment(input, recipe, new Rng(seed));
  const values = out.arraySync();
  out.dispose();
  return values;
}

const close = (a: number, b: number, eps = 1e-5) => Math.abs(a - b) <= eps;

test('the SimCLR recipe runs on the cpu backend, keeps the shape and stays in [0, 1]', (t) => {
  t.is(tf.getBackend(), 'cpu');
  const input = noise([4, 24, 32, 3]);
  const out = augment(input, simclrRecipe(), new Rng(3));
  t.deepEqual(out.shape, [4, 24, 32, 3]);
  const values = out.dataSync();
  t.true(values.every((v) => v >= 0 && v <= 1 && Number.isFinite(v)));
  out.dispose();
  input.dispose();
});

test('the same seed gives the same output and another seed a different one', (t) => {
  const input = noise([3, 16, 16, 3]);
  const a = run(simclrRecipe(), input, 11);
  t.deepEqual(run(simclrRecipe(), input, 11), a);
  t.notDeepEqual(run(simclrRecipe(), input, 12), a);
  input.dispose();
});

test('augment leaks no tensor', (t) => {
  const input = noise([2, 16, 16, 3]);
  run(simclrRecipe(), input, 1); // burn-in: lets tfjs create its cached constants
  const before = tf.memory().numTensors;
  for (let seed = 0; seed < 3; seed++) run(simclrRecipe({ size: [8, 8] }), input, seed);
  t.is(tf.memory().numTensors, before);
  input.dispose();
});

test('the output size option resizes, and one-channel batches go through the whole recipe', (t) => {
  const input = noise([2, 20, 30, 1]);
  const out = augment(input, simclrRecipe({ size: [10, 12] }), new Rng(0));
  t.deepEqual(out.shape, [2, 10, 12, 1]);
  tf.dispose([out, input]);
});

test('a crop of the whole image at the same size is the identity', (t) => {
  const input = noise([2, 6, 9, 3]);
  const out = run([randomResizedCrop({ scale: [1, 1], ratio: [1.5, 1.5] })], input, 5);
  const expected = input.arraySync();
  t.true(out.flat(3).every((v, i) => close(v, expected.flat(3)[i]!)));
  input.dispose();
});

test('a small crop magnifies part of the image', (t) => {
  // A horizontal ramp: a crop resized to full width spans a narrower range of values.
  const ramp = tf.tidy(() => tf.tile(tf.reshape(tf.linspace(0, 1, 32), [1, 1, 32, 1]), [1, 32, 1, 1]) as tf.Tensor4D);
  const [image] = run([randomResizedCrop({ scale: [0.1, 0.2] })], ramp, 2);
  const row = image![0]!.map((px) => px[0]!);
  const span = Math.max(...row) - Math.min(...row);
  t.true(span > 0.1 && span < 0.6, `span ${span}`);
  ramp.dispose();
});

test('horizontalFlip with p 1 mirrors every image and with p 0 none', (t) => {
  const input = noise([2, 4, 5, 3]);
  const mirrored = tf.tidy(() => tf.reverse(input, 2).arraySync());
  t.deepEqual(run([horizontalFlip(1)], input, 0), mirrored);
  t.deepEqual(run([horizontalFlip(0)], input, 0), input.arraySync());
  input.dispose();
});

test('randomGrayscale with p 1 sets every channel to the luma', (t) => {
  const input = noise([1, 3, 3, 3]);
  const source = input.arraySync()[0]!;
  const [image] = run([randomGrayscale(1)], input, 0);
  image!.forEach((row, y) =>
    row.forEach((px, x) => {
      const [r, g, b] = source[y]![x]!;
      const luma = 0.299 * r! + 0.587 * g! + 0.114 * b!;
      t.true(px.every((v) => close(v, luma)));
    }),
  );
  input.dispose();
});

test('brightness jitter multiplies each image by its own drawn factor', (t) => {
  const input = tf.fill([3, 2, 2, 3], 0.5) as tf.Tensor4D;
  const recipe = [colorJitter({ p: 1, brightness: 0.5, contrast: 0, saturation: 0 })];
  const out = run(recipe, input, 9);
  // Naive reference: replay the draws (on?, brightness, contrast, saturation per image).
  const rng = new Rng(9);
  for (let i = 0; i < 3; i++) {
    rng.next();
    const b = rng.uniform(0.5, 1.5);
    rng.next();
    rng.next();
    t.true(out[i]!.flat(2).every((v) => close(v, Math.min(1, 0.5 * b))));
  }
  input.dispose();
});

const lumaMeans = (x: tf.Tensor4D) =>
  tf.tidy(() => tf.mean(tf.sum(tf.mul(x, [0.299, 0.587, 0.114]), 3), [1, 2]).arraySync() as number[]);

test("contrast jitter keeps each image's mean grey", (t) => {
  const input = tf.tidy(() => tf.add(tf.mul(noise([2, 8, 8, 3]), 0.5), 0.25) as tf.Tensor4D);
  // Factors in [0.5, 1.5] around a mean near 0.5 never leave [0, 1], so nothing is clipped.
  const out = augment(input, [colorJitter({ p: 1, brightness: 0, contrast: 0.5, saturation: 0 })], new Rng(4));
  const [before, after] = [lumaMeans(input), lumaMeans(out)];
  before.forEach((m, i) => t.true(close(m, after[i]!, 1e-5)));
  t.notDeepEqual(out.arraySync(), input.arraySync());
  tf.dispose([input, out]);
});

test('saturation jitter moves each pixel along the line through its grey', (t) => {
  const input = tf.tensor4d([0.2, 0.5, 0.8], [1, 1, 1, 3]);
  const [[[pixel]]] = run([colorJitter({ p: 1, brightness: 0, contrast: 0, saturation: 0.9 })], input, 6) as [
    [[number[]]],
  ];
  const rng = new Rng(6);
  rng.next();
  rng.next();
  rng.next();
  const factor = rng.uniform(0.1, 1.9);
  const grey = 0.299 * 0.2 + 0.587 * 0.5 + 0.114 * 0.8;
  [0.2, 0.5, 0.8].forEach((v, c) => t.true(close(pixel[c]!, Math.min(1, Math.max(0, grey + (v - grey) * factor)))));
  input.dispose();
});

/** Naive blur of one HWC image with reflect padding: the reference for the batched separable version. */
function naiveBlur(image: number[][][], taps: number[]): number[][][] {
  const r = (taps.length - 1) / 2;
  const h = image.length;
  const w = image[0]!.length;
  const reflect = (i: number, n: number) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
  return image.map((row, y) =>
    row.map((px, x) =>
      px.map((_, c) => {
        let sum = 0;
        for (let dy = -r; dy <= r; dy++)
          for (let dx = -r; dx <= r; dx++)
            sum += taps[dy + r]! * taps[dx + r]! * image[reflect(y + dy, h)]![reflect(x + dx, w)]![c]!;
        return sum;
      }),
    ),
  );
}

test('gaussianBlur gives each image its own sigma and matches a naive 2-D blur', (t) => {
  const input = noise([3, 9, 10, 3], 7);
  // Seed 2 blurs images 0 and 2 and leaves image 1.
  const out = run([gaussianBlur({ p: 0.7, sigma: [0.5, 2], kernelSize: 5 })], input, 2);
  const images = input.arraySync();
  const rng = new Rng(2);
  let blurred = 0;
  images.forEach((image, i) => {
    const on = rng.next() < 0.7;
    const sigma = rng.uniform(0.5, 2);
    const raw = [-2, -1, 0, 1, 2].map((d) => (on ? Math.exp(-(d * d) / (2 * sigma * sigma)) : d === 0 ? 1 : 0));
    const taps = raw.map((v) => v / raw.reduce((a, b) => a + b, 0));
    const expected = naiveBlur(image, taps).flat(2);
    t.true(
      out[i]!.flat(2).every((v, j) => close(v, expected[j]!, 1e-5)),
      `image ${i}`,
    );
    if (on) blurred++;
  });
  t.true(blurred > 0 && blurred < 3, 'the seed should blur some images and not others');
  input.dispose();
});

test('gaussianBlur keeps a flat image flat, borders included', (t) => {
  const input = tf.fill([2, 7, 7, 3], 0.3) as tf.Tensor4D;
  const out = run([gaussianBlur({ p: 1 })], input, 0);
  t.true(out.flat(3).every((v) => close(v, 0.3)));
  input.dispose();
});

test('augment refuses a batch that is not [batch, H, W, 1 | 3]', (t) => {
  const bad = tf.zeros([2, 4, 4, 2]) as tf.Tensor4D;
  t.throws(() => augment(bad, simclrRecipe(), new Rng(0)), { instanceOf: OptionError, message: /1 or 3 channels/ });
  bad.dispose();
});

const badBlock = test.macro({
  exec(t, build: () => unknown, option: string) {
    t.throws(build, { instanceOf: OptionError, message: new RegExp(`^${option} must be`) });
  },
  title: (_, __, option: string) => `a bad ${option} is refused when the block is built`,
});
test(badBlock, () => randomResizedCrop({ scale: [0.5, 0.2] }), 'scale');
test(badBlock, () => randomResizedCrop({ ratio: [0, 1] }), 'ratio');
test(badBlock, () => randomResizedCrop({ size: [0, 4] }), 'size');
test(badBlock, () => horizontalFlip(1.5), 'p');
test(badBlock, () => colorJitter({ brightness: -1 }), 'brightness');
test(badBlock, () => gaussianBlur({ kernelSize: 4 }), 'kernelSize');
test(badBlock, () => gaussianBlur({ sigma: [0, 1] }), 'sigma');
test(badBlock, () => simclrRecipe({ strength: Number.NaN }), 'strength');

test('an empty recipe returns a copy the caller may dispose', (t) => {
  const input = noise([1, 2, 2, 3]);
  const out = augment(input, [], new Rng(0));
  t.not(out, input);
  out.dispose();
  t.false(input.isDisposed);
  input.dispose();
});
