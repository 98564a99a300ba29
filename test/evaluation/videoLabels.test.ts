import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataFormatError } from '../../core/errors.ts';
import { readVideoLabels } from '../../evaluation/videoLabels.ts';

let dir = '';
let count = 0;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-labels-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `text` to a fresh labels file in the temp folder and reads it. */
async function labels(text: string) {
  const file = join(dir, `labels-${++count}.csv`);
  await writeFile(file, text);
  return { file, ...(await readVideoLabels(file)) };
}

test('clip labels resolve paths against the file and number class names in order of first appearance', async (t) => {
  const { videos, classNames } = await labels('video,label\nrun.mp4,run\n/abs/walk.mp4,walk\nsub/run2.mp4,run\n');
  t.deepEqual(classNames, ['run', 'walk']);
  t.deepEqual(videos, [
    { video: join(dir, 'run.mp4'), label: 0 },
    { video: '/abs/walk.mp4', label: 1 },
    { video: join(dir, 'sub/run2.mp4'), label: 0 },
  ]);
});

test('frame labels keep the frame index, and numeric labels are class indices', async (t) => {
  const { videos, classNames } = await labels('video, frame, label\na.mp4,0,2\na.mp4,4,3\n');
  t.deepEqual(classNames, []);
  t.deepEqual(videos, [
    { video: join(dir, 'a.mp4'), frame: 0, label: 2 },
    { video: join(dir, 'a.mp4'), frame: 4, label: 3 },
  ]);
});

test('a quoted path may hold commas and doubled quotes', async (t) => {
  const { videos } = await labels('video,label\n"walks, park.mp4",walk\n"the ""best"", 2.mp4",run\n');
  t.deepEqual(
    videos.map((v) => v.video),
    [join(dir, 'walks, park.mp4'), join(dir, 'the "best", 2.mp4')],
  );
});

test('an unquoted path with commas still reads, as before the CSV parser', async (t) => {
  const { videos } = await labels('video,frame,label\nwalks, park, 2.mp4,3,walk\n');
  t.deepEqual(videos, [{ video: join(dir, 'walks, park, 2.mp4'), frame: 3, label: 0 }]);
});

test('a BOM, CRLF line ends and blank lines are accepted', async (t) => {
  const { videos, classNames } = await labels('\uFEFFvideo,label\r\n\r\na.mp4,cat\r\n   \r\nb.mp4,dog\r\n\r\n');
  t.deepEqual(classNames, ['cat', 'dog']);
  t.deepEqual(
    videos.map((v) => v.video),
    [join(dir, 'a.mp4'), join(dir, 'b.mp4')],
  );
});

const rejects = test.macro({
  async exec(t, text: string, message: RegExp) {
    const error = await t.throwsAsync(labels(text), { instanceOf: DataFormatError });
    t.regex(error.message, /labels-\d+\.csv: /);
    t.regex(error.message, message);
  },
  title: (title = '') => `${title} fails with a DataFormatError naming the file`,
});

test('a bad header', rejects, 'path,label\na.mp4,1\n', /first line must be the header "video,label".*got "path,label"/);
test('an empty file', rejects, '', /first line must be the header.*got ""/);
test(
  'a line without a label',
  rejects,
  'video,label\na.mp4,1\nb.mp4,\n',
  /line 3: expected "video,label"; got "b\.mp4,"/,
);
test(
  'a frame that is not an integer',
  rejects,
  'video,frame,label\n\na.mp4,x,1\n',
  /line 3: expected "video,frame,label"/,
);
test('an unclosed quote', rejects, 'video,label\n"a.mp4,1\n', /Quote Not Closed.*double-quote a path/);
test('a header without rows', rejects, 'video,label\n\n', /no videos listed/);

test('a missing file fails with a DataFormatError naming it', async (t) => {
  await t.throwsAsync(readVideoLabels(join(dir, 'nope.csv')), {
    instanceOf: DataFormatError,
    message: /nope\.csv: cannot read the labels file/,
  });
});
