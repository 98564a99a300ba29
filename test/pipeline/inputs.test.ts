import test from 'ava';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OptionError, VideoNotFoundError } from '../../core/errors.ts';
import { expandInputs, parseShard } from '../../pipeline/inputs.ts';

let root = '';

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tempo-inputs-'));
  await mkdir(join(root, 'clips', 'deep', 'deeper'), { recursive: true });
  await mkdir(join(root, 'empty'));
  for (const f of [
    'clips/b.mp4',
    'clips/a.MKV',
    'clips/notes.txt',
    'clips/deep/c.webm',
    'clips/deep/deeper/d.ts',
    'clips/.x.mp4',
    'clips/xmp4',
    '.hidden/h.mp4',
    'e.avi',
    'f.mov',
    'other/f.mp4',
    'take [1]/g.mp4',
  ]) {
    await mkdir(join(root, f, '..'), { recursive: true });
    await writeFile(join(root, f), 'x');
  }
  // A link loop must not hang the walk.
  await symlink(join(root, 'clips'), join(root, 'clips', 'deep', 'loop'));
  // A link to a folder is followed like the folder itself.
  await symlink(join(root, 'other'), join(root, 'linked'));
});

test.after.always(async () => {
  await rm(root, { recursive: true, force: true });
});

const rel = (inputs: Array<{ input: string }>) => inputs.map((i) => i.input.slice(root.length + 1));

test('a folder expands recursively to its video files in sorted order', async (t) => {
  const inputs = await expandInputs([join(root, 'clips')]);
  t.deepEqual(rel(inputs), ['clips/a.MKV', 'clips/b.mp4', 'clips/deep/c.webm', 'clips/deep/deeper/d.ts']);
  t.true(inputs.every((i) => i.kind === 'file' && !i.live));
});

test('a glob with ** matches files at any depth, and * stays within one folder', async (t) => {
  t.deepEqual(rel(await expandInputs([`${root}/clips/**/*.{webm,ts}`])), [
    'clips/deep/c.webm',
    'clips/deep/deeper/d.ts',
  ]);
  t.deepEqual(rel(await expandInputs([`${root}/clips/*`])), ['clips/a.MKV', 'clips/b.mp4']);
  t.deepEqual(rel(await expandInputs([`${root}/?.{avi,mov}`])), ['e.avi', 'f.mov']);
});

test('an explicit file is kept whatever its extension, and duplicates are removed', async (t) => {
  const inputs = await expandInputs([join(root, 'clips/notes.txt'), join(root, 'e.avi'), join(root, 'e.avi')]);
  t.deepEqual(rel(inputs), ['clips/notes.txt', 'e.avi']);
});

test('URLs and stdin are live inputs', async (t) => {
  const inputs = await expandInputs([
    'rtsp://cam/1',
    '-',
    'https://example.org/a.mp4',
    'udp://0.0.0.0:5000',
    'tcp://h:1',
  ]);
  t.deepEqual(
    inputs.map((i) => [i.input, i.kind, i.live]),
    [
      ['-', 'stdin', true],
      ['https://example.org/a.mp4', 'url', true],
      ['rtsp://cam/1', 'url', true],
      ['tcp://h:1', 'url', true],
      ['udp://0.0.0.0:5000', 'url', true],
    ],
  );
});

test('a missing path, an empty folder and a glob matching nothing throw VideoNotFoundError', async (t) => {
  const missing = await t.throwsAsync(expandInputs([join(root, 'nope.mp4')]), { instanceOf: VideoNotFoundError });
  t.regex(missing.message, /^video not found: .*nope\.mp4 \(check the path.*a URL needs a scheme/);
  await t.throwsAsync(expandInputs([join(root, 'empty')]), { instanceOf: VideoNotFoundError, message: /no mp4/ });
  await t.throwsAsync(expandInputs([`${root}/*.flv`]), { instanceOf: VideoNotFoundError, message: /matches no/ });
  await t.throwsAsync(expandInputs([`${root}/nodir/*.mp4`]), {
    instanceOf: VideoNotFoundError,
    message: /does not exist/,
  });
});

test('shards are disjoint, cover every input and take the i-th of every N', async (t) => {
  const all = await expandInputs([root]);
  const shards = await Promise.all([0, 1, 2].map((index) => expandInputs([root], { shard: { index, count: 3 } })));
  t.deepEqual(shards[0], [all[0], all[3], all[6]].filter(Boolean));
  t.deepEqual(
    shards
      .flat()
      .map((i) => i.input)
      .sort(),
    all.map((i) => i.input),
  );
});

test('parseShard reads i/N', (t) => {
  t.deepEqual(parseShard('0/4'), { index: 0, count: 4 });
  t.deepEqual(parseShard(' 3 / 4 '), { index: 3, count: 4 });
});

const badShard = test.macro({
  exec(t, value: string, message: RegExp) {
    const error = t.throws(() => parseShard(value), { instanceOf: OptionError });
    t.regex(error.message, /--shard/);
    t.regex(error.message, message);
  },
  title: (_, value: string) => `parseShard rejects ${JSON.stringify(value)} with an OptionError`,
});

test(badShard, '4/4', /0-based/);
test(badShard, '1/0', /positive/);
test(badShard, '-1/4', /0 <= i < N/);
test(badShard, 'a/b', /e\.g\. 0\/4/);
test(badShard, '1', /i\/N/);

test('expandInputs validates a shard given as an object', async (t) => {
  await t.throwsAsync(expandInputs(['-'], { shard: { index: 2, count: 2 } }), { instanceOf: OptionError });
});

test('globs support character classes, a literal dot, and ** over zero folders', async (t) => {
  t.deepEqual(rel(await expandInputs([`${root}/clips/[ab].*`])), ['clips/a.MKV', 'clips/b.mp4']);
  t.deepEqual(rel(await expandInputs([`${root}/clips/[!a]*`])), ['clips/b.mp4']);
  // The dot is literal: `*.mp4` does not match a name that merely ends in `mp4`.
  await t.throwsAsync(expandInputs([`${root}/clips/deep/*.mp4`]), { instanceOf: VideoNotFoundError });
  t.deepEqual(rel(await expandInputs([`${root}/clips/**/b.mp4`])), ['clips/b.mp4']);
  t.deepEqual(rel(await expandInputs([`${root}/clips/*/c.webm`])), ['clips/deep/c.webm']);
});

test('hidden files and folders are skipped by folders and globs, but kept when named', async (t) => {
  t.false(rel(await expandInputs([root])).some((p) => p.includes('/.') || p.startsWith('.')));
  t.deepEqual(rel(await expandInputs([`${root}/.hidden/*`])), ['.hidden/h.mp4']);
  t.deepEqual(rel(await expandInputs([join(root, 'clips/.x.mp4')])), ['clips/.x.mp4']);
});

test('a symbolic link to a folder is followed, and each real file comes once', async (t) => {
  t.deepEqual(rel(await expandInputs([join(root, 'linked')])), ['linked/f.mp4']);
  const all = rel(await expandInputs([root]));
  // `linked/f.mp4` and `other/f.mp4` are one file: the first of equally deep paths stays; the loop adds nothing.
  t.deepEqual(
    all.filter((p) => p.endsWith('f.mp4')),
    ['linked/f.mp4'],
  );
  t.false(all.some((p) => p.includes('loop')));
});

test('an existing path with glob characters is read as a path, not as a pattern', async (t) => {
  t.deepEqual(rel(await expandInputs([join(root, 'take [1]')])), ['take [1]/g.mp4']);
  t.deepEqual(rel(await expandInputs([join(root, 'take [1]/g.mp4')])), ['take [1]/g.mp4']);
});

test('a relative folder or glob gives relative paths, without a leading ./', async (t) => {
  const cwd = process.cwd();
  process.chdir(root);
  t.teardown(() => process.chdir(cwd));
  t.deepEqual(
    (await expandInputs(['./clips/deep/deeper', './*.avi'])).map((i) => i.input),
    ['clips/deep/deeper/d.ts', 'e.avi'],
  );
});

test('the message of an empty folder names the folder, the extensions and the fix', async (t) => {
  const error = await t.throwsAsync(expandInputs([join(root, 'empty')]), { instanceOf: VideoNotFoundError });
  t.is(error.input, join(root, 'empty'));
  t.regex(error.message, /video folder .*empty holds no mp4\/mkv\/.* file .*name a file/);
  t.false(error.message.includes('\n'));
});
