import test, { type ExecutionContext } from 'ava';
import { firstValueFrom, from, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { OptionError } from '../../core/errors.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { windowFrames } from '../../pipeline/windowFrames.ts';
import { flatFrame } from './_frames.ts';

const frames = (n: number, source = 'v') =>
  Array.from({ length: n }, (_, i) => flatFrame(i, i, { source, width: 1, height: 1, channels: 1 }));
const indices = (windows: Frame[][]) => windows.map((w) => w.map((f) => f.index));
const run = (input: Frame[], options: Parameters<typeof windowFrames>[0]) =>
  firstValueFrom(from(input).pipe(windowFrames(options), toArray()));

test('windows of size T start every stride frames', async (t) => {
  t.deepEqual(indices(await run(frames(8), { size: 3, stride: 2 })), [
    [0, 1, 2],
    [2, 3, 4],
    [4, 5, 6],
  ]);
});

test('the stride defaults to the size, so windows touch', async (t) => {
  t.deepEqual(indices(await run(frames(7), { size: 3 })), [
    [0, 1, 2],
    [3, 4, 5],
  ]);
});

test('step spaces the frames of a window', async (t) => {
  t.deepEqual(indices(await run(frames(9), { size: 3, stride: 2, step: 2 })), [
    [0, 2, 4],
    [2, 4, 6],
    [4, 6, 8],
  ]);
});

test('windows never span two videos, and a video shorter than a window gives none', async (t) => {
  const input = [...frames(4, 'a'), ...frames(2, 'b'), ...frames(3, 'c')];
  const windows = await run(input, { size: 3, stride: 1 });
  t.deepEqual(
    windows.map((w) => w.map((f) => `${f.source}${f.index}`)),
    [
      ['a0', 'a1', 'a2'],
      ['a1', 'a2', 'a3'],
      ['c0', 'c1', 'c2'],
    ],
  );
});

test('withinScene restarts at each new scene id', async (t) => {
  const scenes = [0, 0, 0, 1, 1, 1, 1, 2];
  const tagged = frames(8).map((f, i) => ({ ...f, scene: scenes[i]!, cut: i > 0 && scenes[i] !== scenes[i - 1] }));
  t.deepEqual(indices(await run(tagged, { size: 3, stride: 1, withinScene: true })), [
    [0, 1, 2],
    [3, 4, 5],
    [4, 5, 6],
  ]);
  t.deepEqual(indices(await run(tagged, { size: 3, stride: 3 })), [
    [0, 1, 2],
    [3, 4, 5],
  ]);
});

test('withinScene without scene ids fails the stream with an OptionError naming detectSceneCuts', async (t) => {
  const error = await t.throwsAsync(run(frames(3), { size: 2, withinScene: true }), { instanceOf: OptionError });
  t.regex(error.message, /detectSceneCuts/);
});

const badOption = test.macro({
  exec(t, options: Parameters<typeof windowFrames>[0], name: string) {
    t.throws(() => windowFrames(options), {
      instanceOf: OptionError,
      message: new RegExp(`^${name} must be a positive integer`),
    });
  },
  title: (_, options) => `windowFrames rejects ${JSON.stringify(options)} when built`,
});
test(badOption, { size: 0 }, 'size');
test(badOption, { size: 2, stride: 1.5 }, 'stride');
test(badOption, { size: 2, step: -1 }, 'step');

type RunHelpers = Parameters<Parameters<TestScheduler['run']>[0]>[0];
const marbles = (t: ExecutionContext, body: (helpers: RunHelpers) => void) =>
  new TestScheduler((a, b) => t.deepEqual(a, b)).run(body);

const f = Object.fromEntries(frames(6).map((fr) => [String.fromCharCode(97 + fr.index), fr]));

test('windowFrames completes with its source', (t) => {
  marbles(t, ({ cold, expectObservable, expectSubscriptions }) => {
    const source = cold('  a-b-c-d-e|', f);
    expectObservable(source.pipe(windowFrames({ size: 2, stride: 2 }))).toBe('--x---y--|', {
      x: [f.a, f.b],
      y: [f.c, f.d],
    });
    expectSubscriptions(source.subscriptions).toBe('^--------!');
  });
});

test('windowFrames passes an error through', (t) => {
  marbles(t, ({ cold, expectObservable }) => {
    const source = cold('a-b-#', f, new Error('decode failed'));
    expectObservable(source.pipe(windowFrames({ size: 2 }))).toBe(
      '--x-#',
      { x: [f.a, f.b] },
      new Error('decode failed'),
    );
  });
});

test('windowFrames unsubscribes from its source when unsubscribed early', (t) => {
  marbles(t, ({ cold, expectObservable, expectSubscriptions }) => {
    const source = cold('a-b-c-d-e-f|', f);
    expectObservable(source.pipe(windowFrames({ size: 2, stride: 1 })), '^----!').toBe('--x-y-', {
      x: [f.a, f.b],
      y: [f.b, f.c],
    });
    expectSubscriptions(source.subscriptions).toBe('^----!');
  });
});
