import { existsSync, statSync } from 'node:fs';
import { DataFormatError, OptionError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';
import { frameToFloat } from '../pipeline/frame.ts';
import type { FrameFormat } from '../pipeline/frameFormat.ts';
import { decodeImage, listImages } from '../pipeline/readImages.ts';
import { idxImages } from './evaluate.ts';
import type { LabelledItems } from './linearProbe.ts';
import { labelledFrames, readVideoLabels } from './videoLabels.ts';

/** Options of `readLabelledSet`. */
export interface LabelledSetOptions {
  /** The encoder's input `[height, width, channels]`: IDX images are resized to it. */
  inputShape: number[];
  /** How video frames are decoded (the run's frame format). */
  format: FrameFormat;
  /** At most this many IDX images (the first ones), or images of a folder (a seeded draw, kept in folder order). Default 5000. */
  limit?: number;
  /** A folder's labels index these class names (the training folder's), so a test folder's labels mean the same. */
  classes?: readonly string[];
  /** Every n-th frame of a labelled video. Default 4. */
  everyNth?: number;
}

/**
 * A labelled set named as the `evaluate` command takes it: a video label CSV (`video,label` or
 * `video,frame,label`; items grouped by video), an IDX pair written `images.gz,labels.gz` (images first), or a
 * folder of class subfolders of PNG/JPEG images (`train/coat/1.png`; `classes` gives the class names, sorted).
 */
export async function readLabelledSet(
  spec: string,
  option: string,
  options: LabelledSetOptions,
): Promise<LabelledItems & { groups?: string[]; classes?: readonly string[] }> {
  const kind = labelledSetKind(spec, option);
  if (kind === 'folder') return imageFolder(spec, options);
  if (kind === 'csv') {
    const { videos } = await readVideoLabels(spec);
    return labelledFrames(videos, options.format, options.everyNth ?? 4);
  }
  const pair = kind;
  return idxImages(pair[0]!, pair[1]!, options.inputShape, options.limit ?? 5000);
}

/**
 * Which form a labelled set spec has: 'csv' (an existing file), 'folder' (of class subfolders of images) or the
 * IDX `[images, labels]` pair. Checks the files exist, so that a CLI can refuse a bad flag before loading anything.
 */
export function labelledSetKind(spec: string, option: string): 'csv' | 'folder' | [string, string] {
  if (existsSync(spec) && statSync(spec).isDirectory()) return 'folder';
  if (existsSync(spec) && statSync(spec).isFile()) return 'csv';
  const pair = spec.split(',');
  if (pair.length !== 2 || pair.some((path) => !existsSync(path))) {
    throw new OptionError(
      option,
      spec,
      'a video label CSV file, or IDX images and labels written images.gz,labels.gz (both files must exist), or a folder of class subfolders of PNG/JPEG images',
    );
  }
  return pair as [string, string];
}

/**
 * The images of a folder of class subfolders, decoded at the encoder's input size (cover, centre crop, as
 * `pretrain --images`), labelled by subfolder. More than `limit` images: a seeded draw of `limit`, in folder order.
 *
 * @throws DataFormatError when an image sits outside a class subfolder, or the folder has fewer than 2 classes.
 */
async function imageFolder(
  folder: string,
  options: LabelledSetOptions,
): Promise<LabelledItems & { classes: readonly string[] }> {
  const { images, classes } = await listImages([folder], { classes: options.classes });
  const loose = images.find((image) => image.label === undefined);
  if (loose) {
    throw new DataFormatError(
      loose.source,
      `sits directly in ${folder}, outside a class subfolder (put each image in a subfolder named after its class)`,
    );
  }
  if (classes.length < 2)
    throw new DataFormatError(folder, `holds ${classes.length} class subfolder(s); a labelled set needs at least 2`);
  const limit = options.limit ?? 5000;
  const kept =
    images.length <= limit
      ? images
      : new Rng(0)
          .shuffle(images.map((_, i) => i))
          .slice(0, limit)
          .sort((a, b) => a - b)
          .map((i) => images[i]!);
  const [height, width, channels] = options.inputShape as [number, number, number];
  const format = { width, height, gray: channels === 1 };
  const items: Float32Array[] = [];
  // A few decodes at once, as sharp runs them on libuv's threads.
  for (let start = 0; start < kept.length; start += 8) {
    const frames = await Promise.all(kept.slice(start, start + 8).map((image) => decodeImage(image, format)));
    items.push(...frames.map(frameToFloat));
  }
  return { items, labels: kept.map((image) => image.label!), classes };
}
