import test from 'ava';
import { Subject, firstValueFrom, from, toArray, throwError, concat } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import type { MotionWindow } from '../../pipeline/motionScore.ts';
import { preferMotion } from '../../pipeline/preferMotion.ts';
import { Rng } from '../../core/rng.ts';
import { flatFrame } from './_frames.ts';

const window = (motion: number, source = 'v'): MotionWindow => ({ frames: [flatFrame(0, 0, { source })], motion });
const keep = (motions: number[], options: Partial<Parameters<typeof preferMotion>[0]> = {}, source = 'v') =>
  firstValueFrom(
    from(motions.map((m) => window(m, source))).pipe(preferMotion({ rng: new Rng(1), ...options }), toArray()),
  ).then((ws) => ws.map((w) => w.motion));

test('windows in the top fraction of the motion seen so far are kept', async (t) => {
  // Each score is judged against the scores before it and itself.
  t.deepEqual(await keep([0.5, 0.1, 0.9, 0.2, 0.8, 0.05], { topFraction: 0.5 }), [0.5, 0.9, 0.8]);
});

test('minScore drops still windows even when they rank high', async (t) => {
  t.deepEqual(await keep([0.001, 0.002, 0.3, 0.004], { topFraction: 1, minScore: 0.01 }), [0.3]);
});

test('on a long stream about topFraction of the windows are kept, the moving ones', async (t) => {
  const rng = new Rng(5);
  const motions = Array.from({ length: 4000 }, () => rng.next());
  const kept = await keep(motions, { topFraction: 0.25, reservoirSize: 64 });
  t.true(kept.length > 800 && kept.length < 1250, `kept ${kept.length}`);
  t.true(kept.filter((m) => m < 0.5).length < kept.length * 0.05);
});

test('the same seed keeps the same windows', async (t) => {
  const rng = new Rng(9);
  const motions = Array.from({ length: 500 }, () => rng.next());
  const options = { topFraction: 0.3, reservoirSize: 16 };
  t.deepEqual(await keep(motions, options), await keep(motions, options));
});

test('the ranking restarts at each new video', async (t) => {
  const input = [window(0.9, 'a'), window(0.8, 'a'), window(0.1, 'b')];
  const kept = await firstValueFrom(from(input).pipe(preferMotion({ rng: new Rng(0), topFraction: 0.5 }), toArray()));
  // 0.1 would rank last against video a, but it is the first window of video b.
  t.deepEqual(
    kept.map((w) => w.motion),
    [0.9, 0.1],
  );
});

test('preferMotion passes an error through and unsubscribes early', async (t) => {
  const failing = concat(
    from([window(0.5)]),
    throwError(() => new Error('boom')),
  );
  await t.throwsAsync(firstValueFrom(failing.pipe(preferMotion({ rng: new Rng(0) }), toArray())), { message: 'boom' });
  const source = new Subject<MotionWindow>();
  const seen: number[] = [];
  const sub = source.pipe(preferMotion({ rng: new Rng(0), topFraction: 1 })).subscribe((w) => seen.push(w.motion));
  source.next(window(0.3));
  sub.unsubscribe();
  t.false(source.observed);
  t.deepEqual(seen, [0.3]);
});

test('preferMotion rejects bad options when built', (t) => {
  t.throws(() => preferMotion({ rng: new Rng(0), topFraction: 0 }), {
    instanceOf: OptionError,
    message: /topFraction/,
  });
  t.throws(() => preferMotion({ rng: new Rng(0), minScore: 2 }), { instanceOf: OptionError, message: /minScore/ });
  t.throws(() => preferMotion({ rng: new Rng(0), reservoirSize: 0 }), {
    instanceOf: OptionError,
    message: /reservoirSize/,
  });
});
