// issue 12: the Lab adapter layer (colorization and split-brain see lightness or colour only) and the last conv map.
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../core/rng.ts';
import { selectBackend } from '../../models/backend.ts';
import { buildFrameEncoder } from '../../models/frameEncoder.ts';
import { AB_SCALE, LabChannels, labPart, lastConvBlock, rgbToLabTensor } from '../../models/labChannels.ts';
import { rgbToLab } from '../../pipeline/labColour.ts';
import { OptionError } from '../../core/errors.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

test('the tensor conversion matches rgbToLab on random colours', (t) => {
  const rng = new Rng(2);
  const colours = Array.from({ length: 200 }, () => [rng.next(), rng.next(), rng.next()] as const);
  const lab = tf.tidy(() => rgbToLabTensor(tf.tensor2d(colours.map((c) => [...c]))).arraySync() as number[][]);
  let worst = 0;
  colours.forEach((c, i) => rgbToLab(...c).forEach((v, k) => (worst = Math.max(worst, Math.abs(v - lab[i]![k]!)))));
  t.true(worst < 0.02, `worst difference ${worst}`);
});

test('LabChannels gives L / 100 three times, L / 100, or a and b / 110, and survives a JSON round trip', async (t) => {
  const rgb = tf.tensor4d([1, 0, 0, 0, 0, 1], [1, 1, 2, 3]);
  const [red, blue] = [rgbToLab(1, 0, 0), rgbToLab(0, 0, 1)];
  const l3 = labPart(rgb, 'l3');
  const ab = labPart(rgb, 'ab');
  t.deepEqual(l3.shape, [1, 1, 2, 3]);
  t.deepEqual(ab.shape, [1, 1, 2, 2]);
  const want = [red[1] / AB_SCALE, red[2] / AB_SCALE, blue[1] / AB_SCALE, blue[2] / AB_SCALE];
  (ab.dataSync() as Float32Array).forEach((v, k) => t.true(Math.abs(v - want[k]!) < 1e-3));
  const l = l3.dataSync();
  t.true(Math.abs(l[0]! - red[0] / 100) < 1e-3 && l[0] === l[1] && l[1] === l[2]);
  const input = tf.input({ shape: [1, 2, 3] });
  const model = tf.model({ inputs: input, outputs: new LabChannels({ part: 'l' }).apply(input) as tf.SymbolicTensor });
  const copy = await tf.models.modelFromJSON({
    modelTopology: model.toJSON(undefined, false) as tf.io.ModelJSON['modelTopology'],
  });
  const [a, b] = [model.predict(rgb) as tf.Tensor, copy.predict(rgb) as tf.Tensor];
  t.deepEqual(a.shape, [1, 1, 2, 1]);
  t.deepEqual([...a.dataSync()], [...b.dataSync()]);
  tf.dispose([rgb, l3, ab, a, b]);
  t.throws(() => new LabChannels({ part: 'rgb' as 'l' }), { instanceOf: OptionError, message: /part/ });
  t.throws(() => tf.tidy(() => labPart(tf.zeros([1, 2, 2, 1]), 'l')), { instanceOf: OptionError, message: /--gray/ });
});

test('lastConvBlock reads the last conv block of the frame encoder with its weights, built once', (t) => {
  const encoder = buildFrameEncoder({ inputShape: [32, 32, 3], featureSize: 8, width: 4, blocks: 3, seed: 1 });
  const map = lastConvBlock(encoder);
  t.is(lastConvBlock(encoder), map);
  t.deepEqual(map.outputs[0]!.shape, [null, 4, 4, 16]);
  t.is(map.getLayer('conv2'), encoder.getLayer('conv2'));
  // Burnt in first (a first call makes tfjs's lasting constants).
  tf.dispose(tf.tidy(() => map.apply(tf.zeros([2, 32, 32, 3])) as tf.Tensor));
  const before = tf.memory().numTensors;
  tf.dispose(tf.tidy(() => map.apply(tf.zeros([2, 32, 32, 3])) as tf.Tensor));
  t.is(tf.memory().numTensors, before);
  const other = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2] })] });
  t.throws(() => lastConvBlock(other), { instanceOf: OptionError, message: /relu0/ });
  encoder.dispose();
  other.dispose();
});
