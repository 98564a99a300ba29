// issue 12: images as a source (IDX, PNG/JPEG folders with classes), resized, gray or RGB, in a seeded order.
import test from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { firstValueFrom, toArray } from 'rxjs';
import sharp from 'sharp';
import { DataFormatError, ImageDecodeError, ImageNotFoundError, type ImageError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';
import { Valve } from '../../core/valve.ts';
import { readLabelledSet } from '../../evaluation/readLabelledSet.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { decodeImage, imageEpoch, listImages } from '../../pipeline/readImages.ts';

let dir = '';
/** Writes a PNG (or JPEG by extension) of `width` x `height` RGB pixels given by `pixel(x, y)`. */
async function writeImage(
  path: string,
  width: number,
  height: number,
  pixel: (x: number, y: number) => [number, number, number],
): Promise<void> {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 3);
  const image = sharp(data, { raw: { width, height, channels: 3 } });
  await (path.endsWith('.png') ? image.png() : image.jpeg({ quality: 95 })).toFile(path);
}

/** An IDX file of `count` gray `rows` x `cols` images whose pixels are all `image index * 10`. */
function idxBytes(count: number, rows: number, cols: number): Buffer {
  const header = Buffer.alloc(16);
  header.writeUInt32BE(0x00000803, 0);
  header.writeUInt32BE(count, 4);
  header.writeUInt32BE(rows, 8);
  header.writeUInt32BE(cols, 12);
  const data = Buffer.alloc(count * rows * cols);
  for (let i = 0; i < count; i++) data.fill(i * 10, i * rows * cols, (i + 1) * rows * cols);
  return Buffer.concat([header, data]);
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-images-'));
  await mkdir(join(dir, 'classes', 'cat', 'nested'), { recursive: true });
  await mkdir(join(dir, 'classes', 'dog'), { recursive: true });
  const red = (): [number, number, number] => [255, 0, 0];
  await writeImage(join(dir, 'classes', 'cat', 'a.png'), 12, 12, red);
  await writeImage(join(dir, 'classes', 'cat', 'nested', 'b.png'), 12, 12, red);
  await writeImage(join(dir, 'classes', 'dog', 'c.jpg'), 12, 12, () => [0, 0, 255]);
  // Three vertical bands, red | green | blue: covering a square keeps only the green middle.
  await writeImage(join(dir, 'bands.png'), 30, 10, (x) => (x < 10 ? [255, 0, 0] : x < 20 ? [0, 255, 0] : [0, 0, 255]));
  await writeFile(join(dir, 'images.idx'), idxBytes(5, 4, 4));
  await writeFile(join(dir, 'images.idx.gz'), gzipSync(idxBytes(5, 4, 4)));
  const labels = Buffer.alloc(13);
  labels.writeUInt32BE(0x00000801, 0);
  labels.writeUInt32BE(5, 4);
  await writeFile(join(dir, 'labels.idx'), labels);
  await mkdir(join(dir, 'bad'));
  await writeImage(join(dir, 'bad', 'good1.png'), 8, 8, red);
  await writeImage(join(dir, 'bad', 'good2.png'), 8, 8, red);
  const good = await sharp(join(dir, 'bad', 'good1.png'))
    .png()
    .toBuffer();
  await writeFile(join(dir, 'bad', 'broken.png'), good.subarray(0, 30));
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

const epoch = (frames$: ReturnType<typeof imageEpoch>): Promise<Frame[]> => firstValueFrom(frames$.pipe(toArray()));

test('a folder of class subfolders lists every PNG/JPEG below it, labelled by its first-level subfolder', async (t) => {
  const { images, classes } = await listImages([join(dir, 'classes')]);
  t.deepEqual(classes, ['cat', 'dog']);
  t.deepEqual(
    images.map((image) => [image.source.slice(dir.length + 1), image.label]),
    [
      ['classes/cat/a.png', 0],
      ['classes/cat/nested/b.png', 0],
      ['classes/dog/c.jpg', 1],
    ],
  );
});

test('an IDX file, gzipped or not, is one image per entry, copied when already of the size', async (t) => {
  for (const name of ['images.idx', 'images.idx.gz']) {
    const { images, classes } = await listImages([join(dir, name)]);
    t.is(images.length, 5);
    t.deepEqual(classes, []);
    const frame = await decodeImage(images[3]!, { width: 4, height: 4, gray: true });
    t.like(frame, { width: 4, height: 4, channels: 1, source: `${join(dir, name)}#3` });
    t.deepEqual([...frame.data], Array(16).fill(30));
  }
});

test('gray IDX images resized to RGB are replicated over three channels', async (t) => {
  const { images } = await listImages([join(dir, 'images.idx')]);
  const frame = await decodeImage(images[2]!, { width: 8, height: 6 });
  t.like(frame, { width: 8, height: 6, channels: 3 });
  t.deepEqual(new Set(frame.data), new Set([20]));
});

test('images are resized to cover the frame and centre-cropped; RGB keeps colour, gray has one channel', async (t) => {
  const [bands] = (await listImages([join(dir, 'bands.png')])).images;
  const rgb = await decodeImage(bands!, { width: 6, height: 6 });
  t.is(rgb.data.length, 6 * 6 * 3);
  // Resampling bleeds a little at the crop's edges; a stretched (not cropped) image would be red on the left.
  for (let p = 0; p < 36; p++) {
    const [r, g, b] = rgb.data.subarray(p * 3, p * 3 + 3);
    t.true(g! > 200 && r! < 40 && b! < 40, `pixel ${p}: ${r} ${g} ${b}`);
  }
  const gray = await decodeImage(bands!, { width: 6, height: 6, gray: true });
  t.like(gray, { channels: 1 });
  // Green gives a mid gray; a stretched image would show the dark red band on the left.
  t.true(
    gray.data.every((v) => v > 120 && v < 240),
    String([...gray.data]),
  );
  const [dog] = (await listImages([join(dir, 'classes', 'dog')])).images;
  const jpeg = await decodeImage(dog!, { width: 4, height: 4 });
  t.true(jpeg.data[2]! > 200 && jpeg.data[0]! < 50, 'JPEG blue stays blue');
});

test('an epoch holds every image once, in an order that the seed alone decides', async (t) => {
  const { images } = await listImages([join(dir, 'images.idx')]);
  const format = { width: 4, height: 4, gray: true };
  const order = async (seed: number) => (await epoch(imageEpoch(images, format, new Rng(seed)))).map((f) => f.index);
  const [a, b, c] = [await order(5), await order(5), await order(6)];
  t.deepEqual(a, b);
  t.deepEqual([...a].sort(), [0, 1, 2, 3, 4]);
  t.notDeepEqual(a, c);
  // The frame holds its image: index i is all i * 10.
  const frames = await epoch(imageEpoch(images, format, new Rng(5)));
  frames.forEach((f) => t.is(f.data[0], f.index * 10));
});

test('no decode starts while the valve is closed, and the epoch goes on once it opens', async (t) => {
  const { images } = await listImages([join(dir, 'images.idx')]);
  const valve = new Valve();
  valve.close();
  const seen: number[] = [];
  const done = new Promise<void>((resolve) =>
    imageEpoch(images, { width: 4, height: 4, gray: true }, new Rng(1), valve, { concurrency: 2 }).subscribe({
      next: (f) => seen.push(f.index),
      complete: resolve,
    }),
  );
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(seen, []);
  valve.open();
  await done;
  t.is(seen.length, 5);
});

test('a corrupt image is a one-line error naming the file and the fix', async (t) => {
  const { images } = await listImages([join(dir, 'bad')]);
  const error = await t.throwsAsync(epoch(imageEpoch(images, { width: 8, height: 8 }, new Rng(1))), {
    instanceOf: ImageDecodeError,
  });
  t.is(error.message.split('\n').length, 1);
  t.regex(
    error.message,
    /^cannot decode image .*broken\.png: .+ \(re-save it as PNG or JPEG, or pass --on-bad-input skip/,
  );
});

test('with skip, a corrupt image is counted and left out, the others come', async (t) => {
  const { images } = await listImages([join(dir, 'bad')]);
  const skipped: string[] = [];
  const onBadInput = (input: string, error: ImageError) => skipped.push(`${input} ${error.name}`);
  const frames = await epoch(
    imageEpoch(images, { width: 8, height: 8 }, new Rng(1), undefined, { badInputs: 'skip', onBadInput }),
  );
  t.is(frames.length, 2);
  t.deepEqual(skipped, [`${join(dir, 'bad', 'broken.png')} ImageDecodeError`]);
});

test('a missing input, an empty folder and a labels file given as images are named errors', async (t) => {
  await t.throwsAsync(listImages([join(dir, 'nope.png')]), { instanceOf: ImageNotFoundError, message: /nope\.png/ });
  await mkdir(join(dir, 'empty'), { recursive: true });
  await t.throwsAsync(listImages([join(dir, 'empty')]), {
    instanceOf: ImageNotFoundError,
    message: /holds no png\/jpg\/jpeg file/,
  });
  await t.throwsAsync(listImages([join(dir, 'labels.idx')]), {
    instanceOf: DataFormatError,
    message: /labels\.idx: an IDX file of labels or other data, not images/,
  });
});

test('evaluate reads a folder of class subfolders, and a test folder with the training classes', async (t) => {
  const options = { inputShape: [6, 6, 3], format: { width: 6, height: 6 } };
  const train = await readLabelledSet(join(dir, 'classes'), '--train', options);
  t.deepEqual(train.labels, [0, 0, 1]);
  t.deepEqual(train.classes, ['cat', 'dog']);
  t.is(train.items[0]!.length, 6 * 6 * 3);
  t.is(train.items[0]![0], 1);
  const test = await readLabelledSet(join(dir, 'classes', 'dog', '..'), '--test', {
    ...options,
    classes: ['ant', 'cat', 'dog'],
  });
  t.deepEqual(test.labels, [1, 1, 2]);
  await t.throwsAsync(readLabelledSet(join(dir, 'classes'), '--test', { ...options, classes: ['cat', 'emu'] }), {
    instanceOf: DataFormatError,
    message: /class folder\(s\) dog are not among the training classes cat, emu/,
  });
});
