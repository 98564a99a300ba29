import test, { type ExecutionContext } from 'ava';
import { EMPTY, NEVER, Subject, firstValueFrom, from, of, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { OptionError, VideoError } from '../../core/errors.ts';
import { Valve } from '../../core/valve.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { alignViews, cropResize, syntheticViews } from '../../pipeline/multiView.ts';
import { Rng } from '../../core/rng.ts';
import { makeFrame } from './_frames.ts';

const at = (timestamp: number, source: string): Frame => ({
  ...makeFrame(0, () => 0, { width: 1, height: 1, channels: 1, source }),
  timestamp,
});
const stamps = (groups: Frame[][]) => groups.map((g) => g.map((f) => f.timestamp));

test('frames within the tolerance are grouped, one per view, and unmatched frames are dropped', async (t) => {
  const a = [0, 0.04, 0.08, 0.12, 0.16].map((s) => at(s, 'a'));
  // View b starts late, skips 0.08 and runs a little ahead of a's clock.
  const b = [0.041, 0.121, 0.161, 0.2].map((s) => at(s, 'b'));
  const groups = await firstValueFrom(alignViews([from(a), from(b)], { tolerance: 0.01 }).pipe(toArray()));
  t.deepEqual(stamps(groups), [
    [0.04, 0.041],
    [0.12, 0.121],
    [0.16, 0.161],
  ]);
  t.deepEqual(
    groups[0]!.map((f) => f.source),
    ['a', 'b'],
  );
});

test('three views at different rates meet on their common instants', async (t) => {
  const view = (step: number, n: number, name: string) =>
    from(Array.from({ length: n }, (_, i) => at(+(i * step).toFixed(3), name)));
  const groups = await firstValueFrom(
    alignViews([view(0.1, 10, 'a'), view(0.2, 5, 'b'), view(0.3, 4, 'c')], { tolerance: 0.001 }).pipe(toArray()),
  );
  t.deepEqual(stamps(groups), [
    [0, 0, 0],
    [0.6, 0.6, 0.6],
  ]);
});

test('a view that lags behind loses its oldest frames past bufferSize', (t) => {
  const fast = new Subject<Frame>();
  const slow = new Subject<Frame>();
  const groups: Frame[][] = [];
  const sub = alignViews([fast, slow], { tolerance: 0, bufferSize: 2 }).subscribe((g) => groups.push(g));
  for (const s of [1, 2, 3]) fast.next(at(s, 'fast'));
  // Frame 1 of the fast view was dropped to keep the buffer at 2.
  slow.next(at(1, 'slow'));
  slow.next(at(2, 'slow'));
  t.deepEqual(stamps(groups), [[2, 2]]);
  sub.unsubscribe();
  t.false(fast.observed || slow.observed);
});

type RunHelpers = Parameters<Parameters<TestScheduler['run']>[0]>[0];
const marbles = (t: ExecutionContext, body: (helpers: RunHelpers) => void) =>
  new TestScheduler((a, b) => t.deepEqual(a, b)).run(body);
const v = (name: string) => Object.fromEntries([0, 1, 2, 3].map((s) => [String(s), at(s, name)]));

test('alignViews completes once a finished view has nothing left to match', (t) => {
  marbles(t, ({ cold, expectObservable, expectSubscriptions }) => {
    const a = cold('0-1-2-3|', v('a'));
    const b = cold('-1-2|   ', v('b'));
    expectObservable(alignViews([a, b], { tolerance: 0 })).toBe('--x-(y|)', {
      x: [v('a')['1'], v('b')['1']],
      y: [v('a')['2'], v('b')['2']],
    });
    expectSubscriptions(a.subscriptions).toBe('^---!   ');
  });
});

test('alignViews passes an error through and unsubscribes the other views', (t) => {
  marbles(t, ({ cold, expectObservable, expectSubscriptions }) => {
    const a = cold('0-1-2-3|', v('a'));
    const b = cold('0--#    ', v('b'), new Error('camera lost'));
    expectObservable(alignViews([a, b], { tolerance: 0 })).toBe(
      '0--#',
      { 0: [v('a')['0'], v('b')['0']] },
      new Error('camera lost'),
    );
    expectSubscriptions(a.subscriptions).toBe('^--!');
  });
});

test('alignViews unsubscribes every view when unsubscribed early', (t) => {
  marbles(t, ({ cold, expectObservable, expectSubscriptions }) => {
    const a = cold('0-1-2-3|', v('a'));
    const b = cold('0-1-2-3|', v('b'));
    expectObservable(alignViews([a, b], { tolerance: 0 }), '^--!').toBe('0-1', {
      0: [v('a')['0'], v('b')['0']],
      1: [v('a')['1'], v('b')['1']],
    });
    expectSubscriptions(a.subscriptions).toBe('^--!');
    expectSubscriptions(b.subscriptions).toBe('^--!');
  });
});

test('alignViews rejects bad options when built', (t) => {
  t.throws(() => alignViews([], { tolerance: 0 }), { instanceOf: OptionError, message: /views/ });
  t.throws(() => alignViews([of()], { tolerance: -1 }), { instanceOf: OptionError, message: /tolerance/ });
  t.throws(() => alignViews([of()], { tolerance: 0, bufferSize: 0 }), {
    instanceOf: OptionError,
    message: /bufferSize/,
  });
  t.throws(() => alignViews([of()], { tolerance: 0, valves: [new Valve(), new Valve()] }), {
    instanceOf: OptionError,
    message: /valves/,
  });
});

test('alignViews errors, instead of spinning forever, on frames without timestamps (issue 9)', async (t) => {
  const a = [0, 0.1, 0.2].map((s) => at(s, 'a.mp4'));
  // A container without a frame rate decodes to NaN timestamps; every comparison with NaN is false.
  const b = [0, 0.1, 0.2].map((s, i) => (i === 1 ? at(Number.NaN, 'b.ts') : at(s, 'b.ts')));
  const error = await t.throwsAsync(
    firstValueFrom(alignViews([from(a), from(b)], { tolerance: 0.01 }).pipe(toArray())),
    {
      instanceOf: VideoError,
    },
  );
  t.regex(error.message, /b\.ts: frame 0 has no timestamp.*--fps/);
  // Both views NaN from the first frame: the same error at once, nothing emitted.
  const nan = (name: string) => from([at(Number.NaN, name), at(Number.NaN, name)]);
  await t.throwsAsync(firstValueFrom(alignViews([nan('x'), nan('y')], { tolerance: 0 }).pipe(toArray())), {
    instanceOf: VideoError,
    message: /x: frame 0 has no timestamp/,
  });
});

test('alignViews gives the moments streams of different lengths share, then completes', async (t) => {
  const view = (n: number, name: string) => from(Array.from({ length: n }, (_, i) => at(i / 10, name)));
  const groups = await firstValueFrom(
    alignViews([view(30, 'long'), view(12, 'short'), view(20, 'mid')], { tolerance: 0.01 }).pipe(toArray()),
  );
  t.is(groups.length, 12);
  t.deepEqual(
    groups.at(-1)!.map((f) => f.timestamp),
    [1.1, 1.1, 1.1],
  );
});

test('alignViews completes when a stream ends early or is empty, and unsubscribes the endless others', async (t) => {
  t.deepEqual(await firstValueFrom(alignViews([EMPTY, NEVER], { tolerance: 0 }).pipe(toArray())), []);
  const live = new Subject<Frame>();
  const done = firstValueFrom(alignViews([live, from([at(0, 'b'), at(1, 'b')])], { tolerance: 0 }).pipe(toArray()));
  live.next(at(0, 'a'));
  live.next(at(1, 'a'));
  live.next(at(2, 'a'));
  t.deepEqual(stamps(await done), [
    [0, 0],
    [1, 1],
  ]);
  t.false(live.observed);
});

test('alignViews pauses a view that runs ahead through its valve, and opens it again once matched', (t) => {
  const fast = new Subject<Frame>();
  const slow = new Subject<Frame>();
  const valves = [new Valve(), new Valve()];
  const groups: Frame[][] = [];
  const sub = alignViews([fast, slow], { tolerance: 0, bufferSize: 8, valves }).subscribe((g) => groups.push(g));
  for (let s = 0; s < 3; s++) fast.next(at(s, 'fast'));
  t.true(valves[0]!.isOpen);
  fast.next(at(3, 'fast'));
  // Four frames queued (half the buffer) while the slow view has none: the fast view waits.
  t.false(valves[0]!.isOpen);
  t.true(valves[1]!.isOpen);
  slow.next(at(0, 'slow'));
  t.true(valves[0]!.isOpen);
  t.deepEqual(stamps(groups), [[0, 0]]);
  sub.unsubscribe();
});

// A frame whose pixel value encodes its position, so a crop's content can be checked.
const coded = makeFrame(3, (x, y, c) => x * 10 + y + c * 100, { width: 12, height: 8, source: 'one' });

test('syntheticViews gives count crops of the same moment at the frame size', async (t) => {
  const [views] = await firstValueFrom(
    of(coded).pipe(syntheticViews({ count: 3, rng: new Rng(2), cropFraction: [0.5, 0.8] }), toArray()),
  );
  t.is(views!.length, 3);
  for (const [i, view] of views!.entries()) {
    t.like(view, { view: i, index: 3, timestamp: coded.timestamp, source: 'one', width: 12, height: 8, channels: 3 });
    t.is(view.data.length, coded.data.length);
    const [x, y, w, h] = view.crop;
    t.true(w >= 6 && w <= 10 && x + w <= 12 && y + h <= 8);
    // The top-left output pixel samples the crop's top-left area.
    t.true(Math.abs(view.data[0]! - (x * 10 + y)) <= 10);
  }
  t.notDeepEqual(views![0]!.crop, views![1]!.crop);
});

test('syntheticViews is reproducible from the seed', async (t) => {
  const run = (seed: number) =>
    firstValueFrom(of(coded, coded).pipe(syntheticViews({ count: 2, rng: new Rng(seed) }), toArray()));
  const crops = (runs: Awaited<ReturnType<typeof run>>) => runs.flat().map((v) => v.crop);
  t.deepEqual(crops(await run(1)), crops(await run(1)));
  t.notDeepEqual(crops(await run(1)), crops(await run(2)));
});

test('cropResize of the whole frame is the identity and of one pixel is a flat frame', (t) => {
  t.deepEqual(cropResize(coded, [0, 0, 12, 8]), coded.data);
  const flat = cropResize(coded, [5, 2, 1, 1]);
  t.true(flat.every((value, i) => value === coded.data[(2 * 12 + 5) * 3 + (i % 3)]));
});

test('syntheticViews rejects bad options when built', (t) => {
  t.throws(() => syntheticViews({ count: 0, rng: new Rng(0) }), { instanceOf: OptionError, message: /count/ });
  t.throws(() => syntheticViews({ count: 2, rng: new Rng(0), cropFraction: [0.9, 0.5] }), {
    instanceOf: OptionError,
    message: /cropFraction/,
  });
  t.throws(() => syntheticViews({ count: 2, rng: new Rng(0), cropFraction: 0 }), {
    instanceOf: OptionError,
    message: /cropFraction/,
  });
});
