import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DataFormatError, ModelIOError } from '../core/errors.ts';
import { readIdx } from '../pipeline/idx.ts';
import { linearProbe, type LabelledItems, type LinearProbeOptions } from './linearProbe.ts';
import { splitLabelled } from './splitLabelled.ts';
import { loadModel } from '../models/modelIO.ts';

/** Loads the encoder of a run folder (`DIR/encoder/model.json`) or an encoder folder (`DIR/model.json`). */
export async function loadEncoder(dir: string): Promise<tf.LayersModel> {
  for (const candidate of [join(dir, 'encoder'), dir]) {
    if (existsSync(join(candidate, 'model.json'))) return loadModel(candidate);
  }
  throw new ModelIOError(
    dir,
    'no encoder here (expected encoder/model.json or model.json); pass the --out folder of a pretrain run',
  );
}

/**
 * An untrained encoder of the same architecture, initialised exactly as a fresh run with the same seed would
 * be (the initialisers' seeds are part of the saved topology): the baseline every evaluation reports.
 */
export async function randomInitLike(encoder: tf.LayersModel): Promise<tf.LayersModel> {
  const topology = JSON.parse(JSON.stringify(encoder.toJSON(undefined, false)));
  return tf.models.modelFromJSON({ modelTopology: topology });
}

/** A probe's result for the trained encoder and for its random-init baseline. */
export interface ProbeComparison {
  accuracy: number;
  knnAccuracy: number;
  randomInitAccuracy: number;
  randomInitKnnAccuracy: number;
  trainCount: number;
  testCount: number;
}

/**
 * Linear probe (and kNN) of `encoder` on labelled items against a random-init encoder of the same
 * architecture, on the same stratified split (kept by `groups`, e.g. one clip never on both sides).
 */
export async function probeAgainstRandomInit(
  encoder: tf.LayersModel,
  data: LabelledItems & { groups?: string[] },
  options: LinearProbeOptions & { seed?: number; testFraction?: number } = {},
): Promise<ProbeComparison> {
  const { train, test } = splitLabelled(data, options.testFraction ?? 0.3, options.seed ?? 0, data.groups);
  const trained = linearProbe(encoder, train, test, options);
  const baseline = await randomInitLike(encoder);
  try {
    const random = linearProbe(baseline, train, test, options);
    return {
      accuracy: trained.accuracy,
      knnAccuracy: trained.knnAccuracy,
      randomInitAccuracy: random.accuracy,
      randomInitKnnAccuracy: random.knnAccuracy,
      trainCount: trained.trainCount,
      testCount: trained.testCount,
    };
  } finally {
    baseline.dispose();
  }
}

/**
 * Labelled images from IDX files (MNIST / Fashion-MNIST format, gzipped or not), resized to the encoder's
 * input `[height, width, channels]` (gray replicated to 3 channels when the encoder wants rgb). `limit`
 * takes the first images only.
 */
export async function idxImages(
  imagesPath: string,
  labelsPath: string,
  inputShape: number[],
  limit = 5000,
): Promise<LabelledItems> {
  const [images, labels] = [await readIdx(imagesPath), await readIdx(labelsPath)];
  if (images.dims.length !== 3)
    throw new DataFormatError(imagesPath, `expected images [count, rows, cols]; header says [${images.dims}]`);
  if (labels.dims.length !== 1 || labels.dims[0] !== images.dims[0]) {
    throw new DataFormatError(
      labelsPath,
      `expected ${images.dims[0]} labels to match ${imagesPath}; header says [${labels.dims}]`,
    );
  }
  const [count, rows, cols] = images.dims as [number, number, number];
  const n = Math.min(count, limit);
  const [height, width, channels] = inputShape as [number, number, number];
  const items: Float32Array[] = [];
  for (let start = 0; start < n; start += 256) {
    const end = Math.min(n, start + 256);
    const chunk = tf.tidy(() => {
      const raw = tf.tensor4d(
        images.data.subarray(start * rows * cols, end * rows * cols),
        [end - start, rows, cols, 1],
        'int32',
      );
      let x: tf.Tensor4D = tf.div(tf.cast(raw, 'float32'), 255);
      if (rows !== height || cols !== width) x = tf.image.resizeBilinear(x, [height, width]);
      return channels === 3 ? tf.tile(x, [1, 1, 1, 3]) : x;
    });
    const values = chunk.dataSync() as Float32Array;
    chunk.dispose();
    const size = height * width * channels;
    for (let i = 0; i < end - start; i++) items.push(values.slice(i * size, (i + 1) * size));
  }
  return { items, labels: Array.from(labels.data.subarray(0, n)) };
}
