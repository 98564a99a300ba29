import test from 'ava';
import { firstValueFrom, from, toArray } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { splitClips, tupleSpan, windowClips, type WindowClipsOptions } from '../../pipeline/windowClips.ts';
import { flatFrame } from './_frames.ts';

const frames = (n: number, source = 'v') =>
  Array.from({ length: n }, (_, i) => flatFrame(i, i, { source, width: 1, height: 1, channels: 1 }));
const run = async (input: Frame[], options: WindowClipsOptions) =>
  (await firstValueFrom(from(input).pipe(windowClips(options), toArray()))).map((tuple) =>
    tuple.map((clip) => clip.map((f) => f.index)),
  );

test('a tuple is n clips of L frames with the interval left out between them', async (t) => {
  t.is(tupleSpan(3, 4, 2), 16);
  t.deepEqual(await run(frames(20), { clips: 3, clipLength: 4, interval: 2, stride: 4 }), [
    [
      [0, 1, 2, 3],
      [6, 7, 8, 9],
      [12, 13, 14, 15],
    ],
    [
      [4, 5, 6, 7],
      [10, 11, 12, 13],
      [16, 17, 18, 19],
    ],
  ]);
});

test('step spaces the taken frames, and tuples touch by default', async (t) => {
  t.deepEqual(await run(frames(12), { clips: 2, clipLength: 2, interval: 1, step: 2 }), [
    [
      [0, 2],
      [6, 8],
    ],
  ]);
  t.deepEqual(await run(frames(8), { clips: 2, clipLength: 2 }), [
    [
      [0, 1],
      [2, 3],
    ],
    [
      [4, 5],
      [6, 7],
    ],
  ]);
});

test('a tuple never spans two videos', async (t) => {
  const tuples = await run([...frames(5, 'a'), ...frames(6, 'b')], { clips: 2, clipLength: 3, stride: 1 });
  t.deepEqual(tuples, [
    [
      [0, 1, 2],
      [3, 4, 5],
    ],
  ]);
});

test('bad options and a window of the wrong length are named', (t) => {
  t.throws(() => windowClips({ clips: 0, clipLength: 2 }), { instanceOf: OptionError, message: /clips/ });
  t.throws(() => windowClips({ clips: 2, clipLength: 2, interval: -1 }), {
    instanceOf: OptionError,
    message: /interval/,
  });
  t.throws(() => splitClips([1, 2, 3], 2, 2), { instanceOf: OptionError, message: /4 frames/ });
});
