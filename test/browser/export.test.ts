import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import sharp from 'sharp';
import { Rng } from '../../core/rng.ts';
import { generateVideo } from '../../fixtures/syntheticVideos.ts';
import { loadEncoder } from '../../evaluation/evaluate.ts';
import { selectBackend } from '../../models/backend.ts';
import { exportSite } from '../../recipes/export/exportSite.ts';
import { launchChromium, tinyFrameRun, watchedPage } from './_chromium.ts';

let browser: Browser;
let dir: string;
let run: string;

test.before(async () => {
  // Node on wasm, the CLI's backend; the page on tfjs's cpu backend.
  await selectBackend({ backend: 'wasm' });
  browser = await launchChromium();
  dir = await mkdtemp(join(tmpdir(), 'tempo-export-'));
  ({ run } = await tinyFrameRun(dir, { steps: 6 }));
});
test.after.always(async () => {
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A PNG of seeded random pixels made here (not one of the exported items), at the encoder's input size. */
async function randomPng(width: number, height: number, seed: number): Promise<{ png: Buffer; pixels: Float32Array }> {
  const rng = new Rng(seed);
  const bytes = Buffer.from(Array.from({ length: width * height * 3 }, () => Math.floor(rng.next() * 256)));
  const png = await sharp(bytes, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
  return { png, pixels: Float32Array.from(bytes, (b) => b / 255) };
}

test('the exported page embeds a picked image in chromium as Node does (within 1e-4), offline, and lists its 8 neighbours', async (t) => {
  const site = await exportSite({ model: run, out: join(dir, 'site'), points: 40 });
  t.true(site.items >= 16 && site.items <= 40, `${site.items} items exported`);
  t.deepEqual(site.inputShape, [32, 32, 3]);
  const { png, pixels } = await randomPng(32, 32, 14);
  const encoder = await loadEncoder(run);
  const node = tf.tidy(() =>
    Array.from((encoder.predict(tf.tensor4d(pixels, [1, 32, 32, 3])) as tf.Tensor).dataSync()),
  );
  encoder.dispose();

  const { page, watch } = await watchedPage(browser);
  // The cpu backend: headless chromium without a GPU has no dependable WebGL.
  await page.goto(`${pathToFileURL(site.page).href}?backend=cpu`);
  await page.waitForFunction(() => (window as unknown as { tempo?: { ready?: boolean } }).tempo?.ready === true);
  await page.setInputFiles('#file', { name: 'made-here.png', mimeType: 'image/png', buffer: png });
  await page.waitForFunction(() => (window as unknown as { tempo: { done: number } }).tempo.done === 1);
  const browserEmbeddings = await page.evaluate(
    () => (window as unknown as { tempo: { embeddings: number[][] } }).tempo.embeddings,
  );
  t.is(browserEmbeddings.length, 1);
  const diff = Math.max(...node.map((v, i) => Math.abs(v - browserEmbeddings[0]![i]!)));
  t.log(`browser (cpu) vs Node (${tf.getBackend()}): max difference ${diff.toExponential(2)}`);
  t.true(diff < 1e-4, `browser vs Node max difference ${diff}`);
  t.is(node.length, 16);
  t.is(await page.locator('.row figure').count(), 9, 'the query and its 8 nearest exported embeddings');
  t.regex((await page.textContent('#status'))!, /embedded made-here\.png/);
  t.deepEqual(watch.errors, []);
  t.deepEqual(watch.network, []);
  await page.close();
});

test('the exported page embeds 8 frames spread over a picked video (H.264 mp4 made here) and lists their neighbours', async (t) => {
  const site = await exportSite({ model: run, out: join(dir, 'site-video'), points: 24 });
  const { path } = await generateVideo({ seed: 21, path: join(dir, 'picked.mp4'), width: 48, height: 32, frames: 24 });
  const { page, watch } = await watchedPage(browser);
  await page.goto(`${pathToFileURL(site.page).href}?backend=cpu`);
  await page.waitForFunction(() => (window as unknown as { tempo?: { ready?: boolean } }).tempo?.ready === true);
  await page.setInputFiles('#file', path);
  await page.waitForFunction(() => (window as unknown as { tempo: { done: number } }).tempo.done === 1);
  const embeddings = await page.evaluate(
    () => (window as unknown as { tempo: { embeddings: number[][] } }).tempo.embeddings,
  );
  t.is(embeddings.length, 8);
  t.true(embeddings.every((e) => e.length === 16 && e.every(Number.isFinite)));
  // Frames at different times of a moving scene embed differently.
  t.true(new Set(embeddings.map((e) => e.map((v) => v.toFixed(4)).join())).size > 1);
  t.is(await page.locator('.row').count(), 8);
  t.regex((await page.textContent('#status'))!, /embedded picked\.mp4/);
  t.deepEqual(watch.errors, []);
  t.deepEqual(watch.network, []);
  await page.close();
});
