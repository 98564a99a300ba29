// issue 12: the labels of an image run (S4L's labelled fraction, few-shot's base classes).
import test from 'ava';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataFormatError, OptionError } from '../../core/errors.ts';
import type { ImageRef } from '../../pipeline/readImages.ts';
import { labelImages, parseClassList } from '../../recipes/imageLabels.ts';

const idx = { dims: [100, 2, 2], data: new Uint8Array(400) };
const images: ImageRef[] = Array.from({ length: 100 }, (_, index) => ({
  kind: 'idx',
  idx,
  index,
  source: `x.idx#${index}`,
}));

async function labelsFile(labels: number[]): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'labels-')), 'labels.idx');
  const header = Buffer.alloc(8);
  header.writeUInt32BE(0x801, 0);
  header.writeUInt32BE(labels.length, 4);
  await writeFile(path, Buffer.concat([header, Buffer.from(labels)]));
  return path;
}

const tenClasses = Array.from({ length: 100 }, (_, i) => i % 10);

test('a labelled fraction keeps that share of each class, the same images for the same seed', async (t) => {
  const path = await labelsFile(tenClasses);
  const a = await labelImages(images, { labels: path, labelledFraction: 0.2, seed: 3 });
  const b = await labelImages(images, { labels: path, labelledFraction: 0.2, seed: 3 });
  const other = await labelImages(images, { labels: path, labelledFraction: 0.2, seed: 4 });
  t.is(a.images.length, 100, 'every image still feeds the unlabelled tasks');
  t.is(a.labelled.length, 20);
  t.is(a.classes, 10);
  for (let c = 0; c < 10; c++) t.is([...a.labels.values()].filter((l) => l === c).length, 2);
  t.deepEqual([...a.labels.keys()], [...b.labels.keys()]);
  t.notDeepEqual([...a.labels.keys()], [...other.labels.keys()]);
  for (const [source, label] of a.labels) t.is(label, Number(source.split('#')[1]) % 10);
});

test('--classes keeps only the base classes, for every task', async (t) => {
  const path = await labelsFile(tenClasses);
  const base = await labelImages(images, { labels: path, classes: parseClassList('0-4') });
  t.is(base.images.length, 50);
  t.is(base.labelled.length, 50);
  t.true([...base.labels.values()].every((l) => l < 5));
  t.is(base.classes, 5);
});

test('bad labels and flags are one-line errors naming them', async (t) => {
  const short = await labelsFile([1, 2, 3]);
  const mismatch = await t.throwsAsync(labelImages(images, { labels: short }), { instanceOf: DataFormatError });
  t.regex(mismatch.message, /one per image of --images/);
  await t.throwsAsync(labelImages(images, { labelledFraction: 0.5 }), { instanceOf: OptionError, message: /--labels/ });
  const path = await labelsFile(tenClasses);
  await t.throwsAsync(labelImages(images, { labels: path, labelledFraction: 1.5 }), {
    instanceOf: OptionError,
    message: /--labelled-fraction/,
  });
  await t.throwsAsync(labelImages(images, { labels: path, classes: [42] }), {
    instanceOf: OptionError,
    message: /--classes/,
  });
  t.deepEqual(parseClassList('0,2,5-7'), [0, 2, 5, 6, 7]);
  for (const bad of ['a', '4-1', '1,,2'])
    t.throws(() => parseClassList(bad), { instanceOf: OptionError, message: /--classes/ });
});
