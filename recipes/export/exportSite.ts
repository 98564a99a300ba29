import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { OptionError } from '../../core/errors.ts';
import { loadEncoder } from '../../evaluation/evaluate.ts';
import type { FrameFormat } from '../../pipeline/frameFormat.ts';
import type { RunInfo } from '../pretrainVideo.ts';
import { embedItems, thumbnail } from '../report/embeddingMap.ts';
import { labelledItems, runItems } from '../report/mapItems.ts';
import { SITE_HTML, SITE_SCRIPT } from './siteHtml.ts';

/** Options of {@link exportSite}. */
export interface ExportOptions {
  /** A frame run folder (`pretrain --out`), or a folder with the encoder's model.json. */
  model: string;
  /** The folder to write the page into (created; files of the same names are replaced). */
  out: string;
  /** Embeddings exported with the page, among which the page finds neighbours. Default 500. */
  points?: number;
  /** A labelled set to export instead of the run's inputs (as `evaluate --train` takes it). */
  labels?: string;
  /** Seed of image draws. Default 0. */
  seed?: number;
}

/** One exported embedding: what the page shows for a neighbour. */
export interface ExportedItem {
  caption: string;
  thumbnail: string;
  embedding: number[];
}

/** What {@link exportSite} wrote. */
export interface ExportedSite {
  /** The page to open: `<out>/index.html`. */
  page: string;
  files: string[];
  items: number;
  /** `[height, width, channels]` the encoder takes. */
  inputShape: number[];
}

/**
 * Writes a static page that runs the encoder in a browser: `index.html` and `app.js`, TensorFlow.js's own
 * browser build copied from `node_modules` (`tf.min.js`; no CDN), the encoder's topology and weights as a script
 * (`model.js`, weights in base64, loaded with `tf.io.fromMemory`, so the page works from `file://` without a
 * server), and embeddings of the run's inputs (or `labels`) with thumbnails (`embeddings.js`). A person picks a
 * local image or video; the page embeds its frames (an image resized to cover the encoder's input and centre-cropped,
 * as `pretrain --images` does; pixels / 255) and lists each frame's nearest exported neighbours by cosine similarity.
 *
 * @throws OptionError when `model` holds no frame encoder.
 * @example
 * const { page } = await exportSite({ model: 'runs/a', out: 'site' }); // open site/index.html
 */
export async function exportSite(options: ExportOptions): Promise<ExportedSite> {
  const { model, out } = options;
  if (!existsSync(join(model, 'encoder', 'model.json')) && !existsSync(join(model, 'model.json')))
    throw new OptionError('--model', model, 'a frame run folder (pretrain --out) or a folder with model.json');
  const info = existsSync(join(model, 'run.json'))
    ? (JSON.parse(await readFile(join(model, 'run.json'), 'utf8')) as RunInfo & { kind?: string })
    : undefined;
  if (info?.kind === 'text')
    throw new OptionError('--model', model, 'a frame run (video or images): the page embeds images and video frames');
  const encoder = await loadEncoder(model);
  try {
    const inputShape = encoder.inputs[0]!.shape.slice(1) as [number, number, number];
    const format: FrameFormat = info?.format ?? {
      height: inputShape[0],
      width: inputShape[1],
      gray: inputShape[2] === 1,
    };
    const count = options.points ?? 500;
    const items = options.labels
      ? await labelledItems(options.labels, format, count)
      : info && (await runItems(info, count, options.seed ?? 0));
    const exported: ExportedItem[] = [];
    if (items) {
      const embeddings = embedItems(encoder, items, 64);
      for (let i = 0; i < embeddings.length; i++) {
        exported.push({
          // A frame's caption names its video already; a labelled item's gets its class.
          caption:
            items.colourBy === 'source video'
              ? items.captions[i]!
              : `${items.captions[i]} (${items.classes[items.labels[i]!]})`,
          thumbnail: await thumbnail(items.items[i]!, items.shape),
          embedding: Array.from(embeddings[i]!, (v) => Math.round(v * 1e6) / 1e6),
        });
      }
    }
    await mkdir(out, { recursive: true });
    const files = ['index.html', 'app.js', 'tf.min.js', 'model.js', 'embeddings.js'];
    await writeFile(join(out, 'index.html'), SITE_HTML);
    await writeFile(join(out, 'app.js'), SITE_SCRIPT);
    await copyFile(tfjsBrowserBuild(), join(out, 'tf.min.js'));
    await writeFile(join(out, 'model.js'), `window.TEMPO_MODEL = ${JSON.stringify(await modelArtifacts(encoder))};\n`);
    await writeFile(
      join(out, 'embeddings.js'),
      `window.TEMPO_EMBEDDINGS = ${JSON.stringify({ from: items?.from ?? 'nothing (live inputs only)', items: exported })};\n`,
    );
    return { page: join(out, 'index.html'), files: files.map((f) => join(out, f)), items: exported.length, inputShape };
  } finally {
    encoder.dispose();
  }
}

/** The browser build of the installed TensorFlow.js (the same version Node runs). */
export function tfjsBrowserBuild(): string {
  return createRequire(import.meta.url).resolve('@tensorflow/tfjs/dist/tf.min.js');
}

/** The model's topology, weight specs and weights (base64), as `tf.io.fromMemory` takes them in the page. */
async function modelArtifacts(encoder: tf.LayersModel): Promise<Record<string, unknown>> {
  let saved: tf.io.ModelArtifacts | undefined;
  await encoder.save(
    tf.io.withSaveHandler((artifacts) => {
      saved = artifacts;
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
    }),
  );
  const weights = tf.io.CompositeArrayBuffer.join(saved!.weightData);
  return {
    modelTopology: saved!.modelTopology,
    weightSpecs: saved!.weightSpecs,
    weightData: Buffer.from(weights).toString('base64'),
  };
}
