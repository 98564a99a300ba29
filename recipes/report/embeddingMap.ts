import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { UMAP } from 'umap-js';
import { Rng } from '../../core/rng.ts';

/** One point of the map: where UMAP put it, its colour class, its thumbnail and its nearest neighbours. */
export interface MapPoint {
  x: number;
  y: number;
  /** Index into `EmbeddingMap.classes` (the colour). */
  label: number;
  /** Where the item came from: `clip.mp4 @ 1.25 s`, `train/coat/12.png`. */
  caption: string;
  /** A PNG data URL of the item as the encoder saw it. */
  thumbnail: string;
  /** Indices of the 8 nearest other points by cosine similarity of their embeddings (nearest first). */
  neighbours: number[];
  /** Their cosine similarities, same order. */
  similarities: number[];
}

/** What the report's map section shows. */
export interface EmbeddingMap {
  points: MapPoint[];
  /** Names of the colour classes (labels, or source videos). */
  classes: string[];
  /** What the colour means: `label` or `source video`. */
  colourBy: string;
  /** Where the items came from, in words (the run's inputs, or a labelled set). */
  from: string;
}

/** Items to map: pixels as the encoder takes them (HWC, / 255), each with its colour class and caption. */
export interface MapItems {
  /** `[height, width, channels]` of every item. */
  shape: [number, number, number];
  items: Float32Array[];
  labels: number[];
  classes: string[];
  captions: string[];
  colourBy: string;
  from: string;
}

/** Options of {@link embeddingMap}. */
export interface EmbeddingMapOptions {
  /** Seed of UMAP's random draws. Default 0. */
  seed?: number;
  /** Neighbours in the gallery. Default 8. */
  neighbours?: number;
  /** UMAP's optimisation epochs. Default: umap-js's choice (200 or 500, by size). */
  epochs?: number;
  /** Items embedded at once. Default 64. */
  batchSize?: number;
}

/**
 * Embeds the items with the encoder, lays them out in 2-D with UMAP (McInnes et al. 2018, `umap-js`, seeded so a
 * report is reproducible) on cosine distance, finds each item's nearest neighbours in the embedding space (not in
 * the 2-D layout, which distorts distances), and makes a thumbnail of each.
 *
 * @example
 * const map = await embeddingMap(encoder, await runItems('runs/a', 2000), { seed: 0 });
 */
export async function embeddingMap(
  encoder: tf.LayersModel,
  items: MapItems,
  options: EmbeddingMapOptions = {},
): Promise<EmbeddingMap> {
  const embeddings = embedItems(encoder, items, options.batchSize ?? 64);
  const layout = umapLayout(embeddings, options.seed ?? 0, options.epochs);
  const near = nearestNeighbours(embeddings, options.neighbours ?? 8);
  const points: MapPoint[] = [];
  for (let i = 0; i < embeddings.length; i++) {
    points.push({
      x: layout[i]![0]!,
      y: layout[i]![1]!,
      label: items.labels[i]!,
      caption: items.captions[i]!,
      thumbnail: await thumbnail(items.items[i]!, items.shape),
      neighbours: near[i]!.indices,
      similarities: near[i]!.similarities,
    });
  }
  return { points, classes: items.classes, colourBy: items.colourBy, from: items.from };
}

/** The encoder's outputs `[featureSize]` for each item, in batches inside `tf.tidy`. */
export function embedItems(encoder: tf.LayersModel, items: MapItems, batchSize: number): Float32Array[] {
  const out: Float32Array[] = [];
  const [h, w, c] = items.shape;
  for (let from = 0; from < items.items.length; from += batchSize) {
    const batch = items.items.slice(from, from + batchSize);
    const flat = new Float32Array(batch.length * h * w * c);
    batch.forEach((item, k) => flat.set(item, k * h * w * c));
    const values = tf.tidy(() => (encoder.predict(tf.tensor4d(flat, [batch.length, h, w, c])) as tf.Tensor).dataSync());
    const size = values.length / batch.length;
    for (let k = 0; k < batch.length; k++) out.push(Float32Array.from(values.subarray(k * size, (k + 1) * size)));
  }
  return out;
}

/** 2-D UMAP coordinates of the embeddings (cosine distance, seeded). Fewer than 3 points are placed on a line. */
export function umapLayout(embeddings: Float32Array[], seed: number, epochs?: number): number[][] {
  if (embeddings.length < 3) return embeddings.map((_, i) => [i, 0]);
  const rng = new Rng(seed);
  const umap = new UMAP({
    nComponents: 2,
    nNeighbors: Math.min(15, embeddings.length - 1),
    minDist: 0.1,
    nEpochs: epochs,
    distanceFn: cosineDistance,
    random: () => rng.next(),
  });
  return umap.fit(embeddings.map((e) => Array.from(e)));
}

function cosineDistance(a: number[], b: number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return 1 - dot / (Math.sqrt(na * nb) || 1);
}

/** Each embedding's `k` nearest others by cosine similarity, nearest first. */
export function nearestNeighbours(
  embeddings: Float32Array[],
  k: number,
): { indices: number[]; similarities: number[] }[] {
  const unit = embeddings.map((e) => {
    const norm = Math.hypot(...e) || 1;
    return e.map((v) => v / norm);
  });
  return unit.map((a, i) => {
    const scored: [number, number][] = [];
    for (let j = 0; j < unit.length; j++) {
      if (j === i) continue;
      const b = unit[j]!;
      let dot = 0;
      for (let d = 0; d < a.length; d++) dot += a[d]! * b[d]!;
      scored.push([dot, j]);
    }
    scored.sort((x, y) => y[0] - x[0] || x[1] - y[1]);
    const top = scored.slice(0, k);
    return { indices: top.map(([, j]) => j), similarities: top.map(([s]) => Math.round(s * 1000) / 1000) };
  });
}

/** A PNG data URL of an item (pixels / 255, HWC). */
export async function thumbnail(
  item: Float32Array,
  [height, width, channels]: [number, number, number],
): Promise<string> {
  const bytes = Buffer.from(item.map((v) => Math.round(Math.min(1, Math.max(0, v)) * 255)));
  const png = await sharp(bytes, { raw: { width, height, channels: channels as 1 | 3 } })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}
