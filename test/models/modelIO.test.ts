import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildFrameEncoder } from '../../models/frameEncoder.ts';
import { ModelIOError } from '../../core/errors.ts';
import { fileLoadHandler, loadModel, saveModel, writeFileAtomic } from '../../models/modelIO.ts';
import { Rng } from '../../core/rng.ts';

const scratch = await mkdtemp(path.join(tmpdir(), 'tempo-modelio-'));
let folders = 0;
const freshDir = () => path.join(scratch, `m${++folders}`);

test.before(async () => {
  await tf.setBackend('cpu');
});
test.after.always(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function frames(seed: number): tf.Tensor4D {
  const rng = new Rng(seed);
  return tf.tensor4d(
    Float32Array.from({ length: 2 * 16 * 16 * 3 }, () => rng.next()),
    [2, 16, 16, 3],
  );
}

function smallEncoder(seed: number): tf.LayersModel {
  return buildFrameEncoder({ inputShape: [16, 16, 3], featureSize: 8, blocks: 2, seed });
}

async function predictions(model: tf.LayersModel, seed = 3): Promise<Float32Array> {
  const x = frames(seed);
  const y = model.predict(x) as tf.Tensor;
  const data = (await y.data()) as Float32Array;
  tf.dispose([x, y]);
  return data;
}

test('a saved model loads back with identical predictions', async (t) => {
  const dir = freshDir();
  const model = smallEncoder(1);
  await saveModel(model, dir);
  const loaded = await loadModel(dir);
  t.deepEqual(await predictions(loaded), await predictions(model));
  t.deepEqual(
    loaded.getWeights().map((w) => w.shape),
    model.getWeights().map((w) => w.shape),
  );
  model.dispose();
  loaded.dispose();
});

// Serial: ava runs serial tests before the concurrent ones, so no other test's tensors move the count.
test.serial('saving and loading leaks no tensors', async (t) => {
  const dir = freshDir();
  const model = smallEncoder(2);
  await saveModel(model, dir);
  (await loadModel(dir)).dispose(); // burn in
  const before = tf.memory().numTensors;
  await saveModel(model, dir);
  (await loadModel(dir)).dispose();
  t.is(tf.memory().numTensors, before);
  model.dispose();
});

test('the folder follows the standard tfjs layout and leaves no temp files', async (t) => {
  const dir = freshDir();
  const model = smallEncoder(1);
  await saveModel(model, dir);
  t.deepEqual((await readdir(dir)).sort(), ['model.json', 'weights.bin']);
  const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8'));
  t.is(json.format, 'layers-model');
  t.regex(json.generatedBy, /^TensorFlow\.js tfjs-layers v\d/);
  t.is(json.convertedBy, null);
  t.is(json.modelTopology.class_name, 'Model');
  t.is(json.weightsManifest.length, 1);
  t.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
  const specs = json.weightsManifest[0].weights as { name: string; shape: number[]; dtype: string }[];
  t.deepEqual(
    specs.map((s) => s.name),
    model.weights.map((w) => w.originalName),
  );
  t.true(specs.every((s) => s.dtype === 'float32'));
  const floats = specs.reduce((sum, s) => sum + s.shape.reduce((a, b) => a * b, 1), 0);
  t.is((await stat(path.join(dir, 'weights.bin'))).size, floats * 4);
  model.dispose();
});

test('saving over an existing model replaces it', async (t) => {
  const dir = freshDir();
  const first = smallEncoder(1);
  const second = smallEncoder(2);
  await saveModel(first, dir);
  await saveModel(second, dir);
  const loaded = await loadModel(dir);
  t.deepEqual(await predictions(loaded), await predictions(second));
  t.deepEqual((await readdir(dir)).sort(), ['model.json', 'weights.bin']);
  for (const m of [first, second, loaded]) m.dispose();
});

test('a save folder loads in the stock tfjs http loader, as a browser would', async (t) => {
  const dir = freshDir();
  const model = smallEncoder(4);
  await saveModel(model, dir);
  const server = createServer((request, response) => {
    const file = path.join(dir, path.basename(new URL(request.url ?? '/', 'http://x').pathname));
    readFile(file).then(
      (body) =>
        response
          .writeHead(200, { 'content-type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream' })
          .end(body),
      () => response.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const loaded = await tf.loadLayersModel(`http://127.0.0.1:${port}/model.json`);
    t.deepEqual(await predictions(loaded), await predictions(model));
    loaded.dispose();
  } finally {
    server.close();
    model.dispose();
  }
});

test('a save interrupted between its two renames is finished by the next load', async (t) => {
  const dir = freshDir();
  const other = freshDir();
  const oldModel = smallEncoder(1);
  const newModel = smallEncoder(2);
  await saveModel(oldModel, dir);
  await saveModel(newModel, other);
  // The crash state: new weights.bin renamed in, new model.json still under its .next name.
  await copyFile(path.join(other, 'weights.bin'), path.join(dir, 'weights.bin'));
  await copyFile(path.join(other, 'model.json'), path.join(dir, 'model.json.next'));
  const loaded = await loadModel(dir);
  t.deepEqual(await predictions(loaded), await predictions(newModel));
  t.deepEqual((await readdir(dir)).sort(), ['model.json', 'weights.bin']);
  for (const m of [oldModel, newModel, loaded]) m.dispose();
});

test('weights from another save give ModelIOError rather than a silently wrong model', async (t) => {
  const dir = freshDir();
  const other = freshDir();
  const a = smallEncoder(1);
  const b = smallEncoder(2);
  await saveModel(a, dir);
  await saveModel(b, other);
  await copyFile(path.join(other, 'weights.bin'), path.join(dir, 'weights.bin'));
  const error = await t.throwsAsync(loadModel(dir), { instanceOf: ModelIOError });
  t.regex(error.message, /weights\.bin does not match model\.json/);
  a.dispose();
  b.dispose();
});

test('a missing folder gives ModelIOError naming the path and the fix', async (t) => {
  const dir = path.join(scratch, 'does-not-exist');
  const error = await t.throwsAsync(loadModel(dir), { instanceOf: ModelIOError });
  t.true(error.message.includes(dir));
  t.regex(error.message, /no such folder.*saveModel/);
});

test('a folder without model.json gives ModelIOError', async (t) => {
  const dir = await mkdtemp(path.join(scratch, 'empty-'));
  const error = await t.throwsAsync(tf.loadLayersModel(fileLoadHandler(dir)), { instanceOf: ModelIOError });
  t.regex(error.message, /model\.json: missing/);
});

test('a model.json that is not JSON gives ModelIOError naming the file', async (t) => {
  const dir = freshDir();
  const model = smallEncoder(1);
  await saveModel(model, dir);
  await writeFile(path.join(dir, 'model.json'), '{"modelTopology": ');
  const error = await t.throwsAsync(loadModel(dir), { instanceOf: ModelIOError });
  t.true(error.message.includes(path.join(dir, 'model.json')));
  t.regex(error.message, /not valid JSON.*re-save/);
  model.dispose();
});

test('a missing weights.bin gives ModelIOError naming it', async (t) => {
  const dir = freshDir();
  const model = smallEncoder(1);
  await saveModel(model, dir);
  await rm(path.join(dir, 'weights.bin'));
  const error = await t.throwsAsync(loadModel(dir), { instanceOf: ModelIOError });
  t.true(error.message.includes(path.join(dir, 'weights.bin')));
  model.dispose();
});

test('writeFileAtomic writes, overwrites and leaves no temp files', async (t) => {
  const dir = await mkdtemp(path.join(scratch, 'atomic-'));
  const file = path.join(dir, 'state.json');
  await writeFileAtomic(file, '{"step":1}');
  await writeFileAtomic(file, new TextEncoder().encode('{"step":2}'));
  t.is(await readFile(file, 'utf8'), '{"step":2}');
  t.deepEqual(await readdir(dir), ['state.json']);
});

test('writeFileAtomic into a missing folder rejects and leaves nothing behind', async (t) => {
  const dir = await mkdtemp(path.join(scratch, 'atomic-'));
  await t.throwsAsync(writeFileAtomic(path.join(dir, 'nope', 'state.json'), 'x'), { code: 'ENOENT' });
  t.deepEqual(await readdir(dir), []);
});
