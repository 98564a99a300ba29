import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFrameEncoder } from '../../models/frameEncoder.ts';
import { saveModel } from '../../models/modelIO.ts';
import { exportSite } from '../../recipes/export/exportSite.ts';

test('exportSite writes the page, the browser build of tfjs, and a model.js that loads to the same encoder', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-export-site-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const encoder = buildFrameEncoder({ inputShape: [8, 8, 3], featureSize: 4, width: 2, blocks: 1, seed: 3 });
  await saveModel(encoder, join(dir, 'model', 'encoder'));
  // A folder with an encoder but no run.json: no inputs to export, the page still runs the encoder.
  const site = await exportSite({ model: join(dir, 'model'), out: join(dir, 'site') });
  t.is(site.items, 0);
  t.deepEqual(site.inputShape, [8, 8, 3]);
  for (const file of site.files) t.true(existsSync(file), file);
  const html = await readFile(site.page, 'utf8');
  t.false(/\b(src|href)=["']https?:/.test(html), 'no CDN');

  const script = await readFile(join(dir, 'site', 'model.js'), 'utf8');
  const artifacts = JSON.parse(script.replace(/^window\.TEMPO_MODEL = /, '').replace(/;\s*$/, '')) as {
    modelTopology: tf.io.ModelJSON['modelTopology'];
    weightSpecs: tf.io.WeightsManifestEntry[];
    weightData: string;
  };
  const weights = Buffer.from(artifacts.weightData, 'base64');
  const loaded = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: artifacts.modelTopology,
      weightSpecs: artifacts.weightSpecs,
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    }),
  );
  const x = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 5);
  const [a, b] = [encoder.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
  t.deepEqual(Array.from(await a.data()), Array.from(await b.data()));
  tf.dispose([x, a, b]);
  encoder.dispose();
  loaded.dispose();
});

test('exportSite refuses a folder without an encoder, naming it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-export-none-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const error = await t.throwsAsync(exportSite({ model: dir, out: join(dir, 'site') }));
  t.regex(error.message, new RegExp(`--model.*${dir}`));
});
