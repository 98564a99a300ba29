import { DataFormatError, OptionError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';
import { readIdx } from '../pipeline/idx.ts';
import type { ImageRef } from '../pipeline/readImages.ts';

/** Options of `labelImages`. */
export interface ImageLabelOptions {
  /** An IDX labels file (`.gz` too) with one label per image of the inputs, in their order. Absent: class subfolders. */
  labels?: string;
  /** Share of each class's images whose label is kept (a seeded draw); the rest are unlabelled. Default 1. */
  labelledFraction?: number;
  /** Keep only the images of these classes, for every task (the base classes of few-shot training). */
  classes?: readonly number[];
  /** Seed of the labelled draw: runs with the same seed label the same images, whatever their tasks. Default 0. */
  seed?: number;
}

/** The images of a run with their labels. */
export interface LabelledImages {
  /** Every image the run reads (those of `classes` only, when given). */
  images: readonly ImageRef[];
  /** The images whose label is kept: what a task with `needsLabels` reads. */
  labelled: readonly ImageRef[];
  /** The class of each labelled image by its `source` (`TaskSetup.labels`). */
  labels: ReadonlyMap<string, number>;
  /** One more than the largest class index of the labelled images. */
  classes: number;
}

/**
 * Labels the images of a run: from an IDX labels file (one byte a label, the images' order), else from the class
 * subfolders `listImages` found; keeps the images of `classes` only; then keeps the label of a stratified seeded
 * `labelledFraction` of each class (at least one image a class). The draw depends on the seed alone, so an S4L run
 * (`supervised,rotation`) and its supervised-only baseline train on the same labels.
 *
 * @throws OptionError for a fraction outside (0, 1] or no label at all.
 * @throws DataFormatError when the labels file does not hold one label per image.
 * @example
 * const { labelled, labels } = await labelImages(images, { labels: 'train-labels.idx', labelledFraction: 0.1 });
 */
export async function labelImages(images: readonly ImageRef[], options: ImageLabelOptions): Promise<LabelledImages> {
  const { labelledFraction = 1, seed = 0 } = options;
  if (!(labelledFraction > 0 && labelledFraction <= 1))
    throw new OptionError('--labelled-fraction', labelledFraction, 'a share of the images in (0, 1], e.g. 0.1');
  let labelled = options.labels ? await withIdxLabels(images, options.labels) : images;
  if (labelled.some((image) => image.label === undefined)) {
    throw new OptionError(
      '--labels',
      options.labels,
      'a label for every image (for --tasks supervised): an IDX labels file with --images images.idx, or an image folder of class subfolders',
    );
  }
  let kept = labelled;
  if (options.classes) {
    const wanted = new Set(options.classes);
    kept = labelled.filter((image) => wanted.has(image.label!));
    if (kept.length === 0)
      throw new OptionError('--classes', options.classes.join(','), 'classes that some images have');
  }
  labelled = drawPerClass(kept, labelledFraction, new Rng(seed * 7907 + 17));
  const labels = new Map(labelled.map((image) => [image.source, image.label!]));
  const classes = Math.max(...labels.values()) + 1;
  return { images: kept, labelled, labels, classes };
}

/**
 * Parses a `--classes` list: comma-separated class indices and ranges, `0-4` or `0,2,5-7`.
 *
 * @throws OptionError naming the value and the form.
 */
export function parseClassList(value: string): number[] {
  const classes = value.split(',').flatMap((part) => {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m || (m[2] !== undefined && Number(m[2]) < Number(m[1])))
      throw new OptionError('--classes', value, 'class indices and ranges, e.g. 0-4 or 0,2,5-7');
    const [lo, hi] = [Number(m[1]), Number(m[2] ?? m[1])];
    return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  });
  return [...new Set(classes)].sort((a, b) => a - b);
}

async function withIdxLabels(images: readonly ImageRef[], path: string): Promise<ImageRef[]> {
  const idx = await readIdx(path);
  if (idx.dims.length !== 1 || idx.dims[0] !== images.length) {
    throw new DataFormatError(
      path,
      `holds [${idx.dims}] where ${images.length} labels (one per image of --images, in order) were expected (give the labels file of those images)`,
    );
  }
  return images.map((image, i) => ({ ...image, label: idx.data[i]! }));
}

/** A stratified seeded share of each class's images (at least one a class), in their original order. */
function drawPerClass(images: readonly ImageRef[], fraction: number, rng: Rng): ImageRef[] {
  if (fraction === 1) return [...images];
  const byClass = new Map<number, number[]>();
  images.forEach((image, i) => {
    const members = byClass.get(image.label!) ?? [];
    members.push(i);
    byClass.set(image.label!, members);
  });
  const picked = [...byClass.entries()]
    .sort((a, b) => a[0] - b[0])
    .flatMap(([, members]) => rng.shuffle(members).slice(0, Math.max(1, Math.round(members.length * fraction))));
  return picked.sort((a, b) => a - b).map((i) => images[i]!);
}
