import { stat } from 'node:fs/promises';
import { relative, sep } from 'node:path';
import { Observable } from 'rxjs';
import sharp, { type Sharp } from 'sharp';
import {
  DataFormatError,
  ImageDecodeError,
  ImageNotFoundError,
  InputNotFoundError,
  OptionError,
  type ImageError,
} from '../core/errors.ts';
import { hasExtension, resolveInputs } from '../core/resolveInputs.ts';
import type { Rng } from '../core/rng.ts';
import type { Valve } from '../core/valve.ts';
import type { Frame } from './frame.ts';
import type { FrameFormat } from './frameFormat.ts';
import { readIdx, type IdxArray } from './idx.ts';

/** File extensions (lower case, no dot) that folders and globs of images keep. */
export const IMAGE_EXTENSIONS: readonly string[] = ['png', 'jpg', 'jpeg'];

/** One image of a list: a PNG/JPEG file, or one image of an IDX file held in memory. */
export type ImageRef = {
  /** What errors and frames name: the file, or `file#i` for the i-th image of an IDX file. */
  readonly source: string;
  /** Index of its class in `ImageList.classes`, when it sits in a class subfolder of a folder input. */
  readonly label?: number;
} & (
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'idx'; readonly idx: IdxArray; readonly index: number }
);

/** The images of a run's inputs, in input order (each folder's files sorted). */
export interface ImageList {
  readonly images: readonly ImageRef[];
  /**
   * Class names, sorted: the subfolders of folder inputs that hold images (`train/coat/1.png` is class `coat`);
   * `label` indexes this. Empty when no image sits in a subfolder.
   */
  readonly classes: readonly string[];
}

/** Options of `listImages`. */
export interface ListImagesOptions {
  /**
   * Use these class names (a training set's) instead of the sorted subfolders found, so that a test folder's labels
   * mean what the training folder's do; a subfolder not among them is an error naming it.
   */
  readonly classes?: readonly string[];
}

/**
 * Lists the images of `inputs`: a PNG or JPEG file; an IDX file (`.gz` too) of images `[count, rows, cols]` or
 * `[count, rows, cols, 1|3]` (read into memory once, as MNIST-sized files are); a folder, walked recursively for
 * PNG/JPEG files (hidden ones skipped), whose first-level subfolders are classes; or a quoted glob. Nothing is
 * decoded yet.
 *
 * @throws ImageNotFoundError when a path does not exist or a folder or glob holds no PNG/JPEG.
 * @throws DataFormatError when a file is neither PNG/JPEG (by its extension) nor an IDX file of images.
 * @example
 * const { images, classes } = await listImages(['photos/']); // photos/cat/1.png -> label of 'cat'
 */
export async function listImages(inputs: readonly string[], options: ListImagesOptions = {}): Promise<ImageList> {
  const found: { ref: ImageRef; className?: string }[] = [];
  for (const input of inputs) {
    const isFolder = (await stat(input).catch(() => undefined))?.isDirectory() ?? false;
    for (const path of await resolveImageFiles(input)) {
      if (!hasExtension(path, IMAGE_EXTENSIONS) && !isFolder) {
        const idx = await readIdxImages(path);
        const count = idx.dims[0]!;
        for (let index = 0; index < count; index++)
          found.push({ ref: { kind: 'idx', idx, index, source: `${path}#${index}` } });
        continue;
      }
      const parts = isFolder ? relative(input, path).split(sep) : [];
      found.push({ ref: { kind: 'file', path, source: path }, className: parts.length > 1 ? parts[0] : undefined });
    }
  }
  const seen = [...new Set(found.flatMap((f) => (f.className === undefined ? [] : [f.className])))].sort();
  const classes = options.classes ?? seen;
  const unknown = seen.filter((name) => !classes.includes(name));
  if (unknown.length > 0) {
    throw new DataFormatError(
      inputs.join(', '),
      `class folder(s) ${unknown.join(', ')} are not among the training classes ${classes.join(', ')} (give the same class subfolders)`,
    );
  }
  const images = found.map(({ ref, className }): ImageRef =>
    className === undefined ? ref : { ...ref, label: classes.indexOf(className) },
  );
  return { images, classes };
}

async function resolveImageFiles(input: string): Promise<string[]> {
  try {
    return (await resolveInputs([input], { extensions: IMAGE_EXTENSIONS, noun: 'image' })).map((r) => r.input);
  } catch (error) {
    if (error instanceof InputNotFoundError) {
      throw new ImageNotFoundError(error.input, { cause: error, message: error.message });
    }
    throw error;
  }
}

async function readIdxImages(path: string): Promise<IdxArray> {
  let idx: IdxArray;
  try {
    idx = await readIdx(path);
  } catch (error) {
    const detail = error instanceof DataFormatError ? error.message.slice(path.length + 2) : String(error);
    throw new DataFormatError(path, `neither a PNG/JPEG (by its extension) nor an IDX file of images: ${detail}`, {
      cause: error,
    });
  }
  const [count, , , channels = 1] = idx.dims;
  if (idx.dims.length < 3 || idx.dims.length > 4 || (channels !== 1 && channels !== 3) || count === 0) {
    throw new DataFormatError(
      path,
      `an IDX file of labels or other data, not images: its header says [${idx.dims}] where images are [count, rows, cols] or [count, rows, cols, 1|3] (give the images file; labels go to evaluate)`,
    );
  }
  return idx;
}

/**
 * Decodes one image to a frame of `format`: resized to cover `width` x `height` and centre-cropped to it (the
 * aspect ratio kept, nothing padded), EXIF orientation applied, transparency flattened onto black, then gray (1
 * channel) or RGB (3 channels; gray images are replicated). An IDX image already of the size and channels is
 * copied without `sharp`.
 *
 * @throws ImageDecodeError naming the file when it cannot be read or decoded.
 * @example
 * const frame = await decodeImage({ kind: 'file', path: 'a.png', source: 'a.png' }, { width: 28, height: 28, gray: true });
 */
export async function decodeImage(ref: ImageRef, format: FrameFormat, position = 0): Promise<Frame> {
  const { width, height } = format;
  const channels = format.gray ? 1 : 3;
  const frame = (data: Uint8Array): Frame => ({
    data,
    width,
    height,
    channels,
    index: position,
    timestamp: 0,
    source: ref.source,
  });
  let image: Sharp;
  if (ref.kind === 'idx') {
    const [, rows, cols, depth = 1] = ref.idx.dims as [number, number, number, number?];
    const size = rows * cols * depth;
    const pixels = ref.idx.data.subarray(ref.index * size, (ref.index + 1) * size);
    if (rows === height && cols === width && depth === channels) return frame(pixels.slice());
    image = sharp(pixels, { raw: { width: cols, height: rows, channels: depth as 1 | 3 } });
  } else image = sharp(ref.path, { failOn: 'error' }).autoOrient();
  image = image.resize({ width, height, fit: 'cover', position: 'centre' }).flatten({ background: '#000000' });
  image = format.gray ? image.grayscale() : image.toColourspace('srgb');
  try {
    const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== channels || info.width !== width || info.height !== height) {
      throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}, not ${width}x${height}x${channels}`);
    }
    return frame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  } catch (error) {
    const detail = (error instanceof Error ? error.message : String(error)).split('\n')[0]!.replace(/:\s*$/, '');
    throw new ImageDecodeError(ref.source, detail, { cause: error });
  }
}

/** Options of `imageEpoch`. */
export interface ImageEpochOptions {
  /** Images decoded at once (`sharp` runs them on libuv's threads); memory holds about this many frames. Default 4. */
  concurrency?: number;
  /** 'fail' (default): a bad image ends the stream with its `ImageDecodeError`; 'skip': it is left out and reported. */
  badInputs?: 'skip' | 'fail';
  /** With `badInputs: 'skip'`, called for each image left out (a bad image fails in every epoch). */
  onBadInput?: (input: string, error: ImageError) => void;
}

/**
 * One epoch of images as frames: the images in an order shuffled by `rng` (the same generator state gives the same
 * epoch, which `--resume` relies on), decoded `concurrency` at a time and emitted in that order. While `valve` is
 * closed no new decode starts, so memory stays at the decodes in flight whatever the number of images. A frame's
 * `index` is the image's position in `images`; its `timestamp` is 0 (images have no time).
 *
 * @example
 * const { images } = await listImages(['photos/']);
 * imageEpoch(images, { width: 64, height: 64 }, new Rng(1), valve).subscribe((frame) => console.log(frame.source));
 */
export function imageEpoch(
  images: readonly ImageRef[],
  format: FrameFormat,
  rng: Rng,
  valve?: Valve,
  options: ImageEpochOptions = {},
): Observable<Frame> {
  const { concurrency = 4, badInputs = 'fail' } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new OptionError('concurrency', concurrency, 'a positive integer');
  if (badInputs !== 'skip' && badInputs !== 'fail') throw new OptionError('badInputs', badInputs, "'skip' or 'fail'");
  const order = rng.shuffle(images.map((_, i) => i));
  return new Observable<Frame>((subscriber) => {
    let stopped = false;
    let cancelWait = (): void => {};
    let started = 0;
    // Decodes in flight, in emission order; each settles to a frame or an error (none rejects unobserved).
    const pending: Promise<Frame | ImageError>[] = [];
    const start = (): void => {
      while (pending.length < concurrency && started < order.length) {
        const position = order[started++]!;
        pending.push(decodeImage(images[position]!, format, position).catch((error: ImageError) => error));
      }
    };
    const pump = async (): Promise<void> => {
      while (!stopped) {
        if (valve && !valve.isOpen) {
          await new Promise<void>((wake) => (cancelWait = valve.onOpen(wake)));
          continue;
        }
        start();
        const next = pending.shift();
        if (!next) return subscriber.complete();
        const result = await next;
        if (stopped) return;
        if (!(result instanceof Error)) subscriber.next(result);
        else if (badInputs === 'skip' && result instanceof ImageDecodeError) options.onBadInput?.(result.input, result);
        else return subscriber.error(result);
      }
    };
    pump().catch((error: unknown) => subscriber.error(error));
    return () => {
      stopped = true;
      cancelWait();
    };
  });
}
