import test from 'ava';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputNotFoundError, OptionError } from '../../core/errors.ts';
import { hasExtension, resolveInputs, type ResolveInputsOptions } from '../../core/resolveInputs.ts';

let root = '';

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tempo-resolve-'));
  for (const f of ['photos/b.PNG', 'photos/a.jpg', 'photos/sub/c.jpeg', 'photos/notes.txt', 'photos/.thumb.png']) {
    await mkdir(join(root, f, '..'), { recursive: true });
    await writeFile(join(root, f), 'x');
  }
  await writeFile(join(root, 'book.txt.gz'), 'x');
  await writeFile(join(root, 'book.md'), 'x');
  await symlink(join(root, 'photos', 'a.jpg'), join(root, 'photos', 'sub', 'same.jpg'));
});

test.after.always(async () => {
  await rm(root, { recursive: true, force: true });
});

const IMAGES: ResolveInputsOptions = { extensions: ['png', 'jpg', 'jpeg'], noun: 'image' };
const rel = (resolved: Array<{ input: string }>) =>
  resolved.map((r) => (r.input.startsWith(root) ? r.input.slice(root.length + 1) : r.input));

test('a folder gives its files with a wanted extension, any case, sorted, each real file once', async (t) => {
  t.deepEqual(rel(await resolveInputs([join(root, 'photos')], IMAGES)), [
    'photos/a.jpg',
    'photos/b.PNG',
    'photos/sub/c.jpeg',
  ]);
});

const extensionsWith = test.macro({
  async exec(t, extensions: string[]) {
    t.deepEqual(rel(await resolveInputs([`${root}/photos/*`], { extensions })), ['photos/b.PNG']);
  },
  title: (_, extensions: string[]) => `the extension ${JSON.stringify(extensions)} is read with or without its dot`,
});
test(extensionsWith, ['png']);
test(extensionsWith, ['.PNG']);

test('gzipped keeps a .gz of a wanted extension', async (t) => {
  t.deepEqual(rel(await resolveInputs([`${root}/book.*`], { extensions: ['txt', 'md'], gzipped: true })), [
    'book.md',
    'book.txt.gz',
  ]);
  t.deepEqual(rel(await resolveInputs([`${root}/book.*`], { extensions: ['txt', 'md'] })), ['book.md']);
});

test('inputs keep their order, and an explicit file is kept whatever its extension', async (t) => {
  const inputs = [join(root, 'photos/notes.txt'), `${root}/photos/*.jpg`, join(root, 'photos/notes.txt')];
  t.deepEqual(rel(await resolveInputs(inputs, IMAGES)), ['photos/notes.txt', 'photos/a.jpg', 'photos/notes.txt']);
});

test('stdin and URLs pass through only when allowed', async (t) => {
  const resolved = await resolveInputs(['-', 'rtsp://cam/1'], { ...IMAGES, stdin: true, urls: true });
  t.deepEqual(resolved, [
    { input: '-', kind: 'stdin' },
    { input: 'rtsp://cam/1', kind: 'url' },
  ]);
  await t.throwsAsync(resolveInputs(['-'], IMAGES), { instanceOf: InputNotFoundError, message: /not found: -/ });
  await t.throwsAsync(resolveInputs(['rtsp://cam/1'], IMAGES), { instanceOf: InputNotFoundError });
});

const notFound = test.macro({
  async exec(t, input: string, message: RegExp) {
    const error = await t.throwsAsync(resolveInputs([join(root, input)], IMAGES), { instanceOf: InputNotFoundError });
    t.is(error.input, join(root, input));
    t.regex(error.message, message);
    t.false(error.message.includes('\n'));
  },
  title: (_, input: string) => `${input} fails with a one-line InputNotFoundError naming it and the fix`,
});
test(
  notFound,
  'missing.png',
  /^image not found: .*missing\.png \(check the path, or give a folder or a quoted glob such as 'data\/\*\*\/\*\.png'\)$/,
);
test(notFound, 'photos/sub/*.gif', /^image glob .*\*\.gif matches no png\/jpg\/jpeg file \(check the pattern/);
test(notFound, 'nodir/*.png', /^image glob .* matches no file: the folder .*nodir does not exist/);

test('an empty extension list is refused when called', async (t) => {
  await t.throwsAsync(resolveInputs([root], { extensions: [] }), { instanceOf: OptionError, message: /extensions/ });
});

test('hasExtension matches the end of the name, any case', (t) => {
  t.true(hasExtension('a/B.MKV', ['mkv']));
  t.false(hasExtension('a/xmkv', ['mkv']));
  t.true(hasExtension('a.txt.gz', ['.txt'], { gzipped: true }));
  t.false(hasExtension('a.txt.gz', ['.txt']));
});
