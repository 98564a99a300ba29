import test from 'ava';
import {
  Observable,
  Subject,
  asyncScheduler,
  firstValueFrom,
  from,
  observeOn,
  of,
  throwError,
  toArray,
  concat,
  take,
} from 'rxjs';
import { interleave, roundRobin } from '../../pipeline/interleave.ts';
import { Rng } from '../../core/rng.ts';
import { shuffleBuffer } from '../../core/shuffleBuffer.ts';
import { Valve } from '../../core/valve.ts';

const range = (lo: number, n: number) => Array.from({ length: n }, (_, i) => lo + i);

test('roundRobin takes one item of each source in turn and drops finished sources', async (t) => {
  const out = await firstValueFrom(roundRobin([of(1, 2, 3), of(10), of(20, 21)]).pipe(toArray()));
  t.deepEqual(out, [1, 10, 20, 2, 21, 3]);
});

test('roundRobin gives the same order whatever the timing of the sources', async (t) => {
  const sync = await firstValueFrom(roundRobin([from(range(0, 5)), from(range(100, 3))]).pipe(toArray()));
  // The second source now arrives entirely before the first.
  const late = from(range(0, 5)).pipe(observeOn(asyncScheduler, 5));
  const skewed = await firstValueFrom(roundRobin([late, from(range(100, 3))]).pipe(toArray()));
  t.deepEqual(skewed, sync);
  t.deepEqual(sync, [0, 100, 1, 101, 2, 102, 3, 4]);
});

test('shuffleBuffer emits a permutation, the same one for the same seed', async (t) => {
  const run = (seed: number) =>
    firstValueFrom(from(range(0, 50)).pipe(shuffleBuffer<number>({ rng: new Rng(seed), bufferSize: 8 }), toArray()));
  const a = await run(1);
  t.deepEqual(
    [...a].sort((x, y) => x - y),
    range(0, 50),
  );
  t.deepEqual(await run(1), a);
  t.notDeepEqual(await run(2), a);
  t.notDeepEqual(a, range(0, 50));
});

test('shuffleBuffer of size 1 keeps the order', async (t) => {
  t.deepEqual(
    await firstValueFrom(from([3, 1, 2]).pipe(shuffleBuffer<number>({ rng: new Rng(0), bufferSize: 1 }), toArray())),
    [3, 1, 2],
  );
});

test('shuffleBuffer rejects a bad buffer size', (t) => {
  t.throws(() => shuffleBuffer({ rng: new Rng(0), bufferSize: 0 }), {
    message: /bufferSize must be a positive integer/,
  });
});

test('interleave is reproducible from the seed with asynchronous sources', async (t) => {
  const sources = () => [
    from(range(0, 20)).pipe(observeOn(asyncScheduler, 3)),
    from(range(100, 20)),
    from(range(200, 20)).pipe(observeOn(asyncScheduler)),
  ];
  const run = (seed: number) =>
    firstValueFrom(interleave(sources(), { rng: new Rng(seed), bufferSize: 16 }).pipe(toArray()));
  const a = await run(7);
  t.is(a.length, 60);
  t.deepEqual(await run(7), a);
  t.notDeepEqual(await run(8), a);
  // Mixing: the first 15 items come from more than one source.
  t.true(new Set(a.slice(0, 15).map((x) => Math.floor(x / 100))).size > 1);
});

test('interleave passes an error through', async (t) => {
  const failing = concat(
    of(1),
    throwError(() => new Error('decoder died')),
  );
  await t.throwsAsync(
    firstValueFrom(interleave([of(5, 6), failing], { rng: new Rng(0), bufferSize: 4 }).pipe(toArray())),
    { message: 'decoder died' },
  );
});

test('roundRobin closes the valve of a source that runs ahead and opens it as it drains', (t) => {
  const slow = new Subject<number>();
  const fast = new Subject<number>();
  const valve = new Valve();
  const seen: number[] = [];
  const sub = roundRobin([slow, fast], { queueSize: 4, valves: [undefined, valve] }).subscribe((x) => seen.push(x));
  for (let i = 0; i < 4; i++) fast.next(100 + i);
  t.false(valve.isOpen);
  for (let i = 0; i < 3; i++) slow.next(i);
  t.true(valve.isOpen);
  t.deepEqual(seen, [0, 100, 1, 101, 2, 102]);
  sub.unsubscribe();
});

test('roundRobin keeps its rotation when an opened valve makes a source emit at once (as a paused decoder does)', (t) => {
  // Like decodeFrames' sink: it emits while its valve is open, and when the valve reopens it emits its pending
  // items synchronously, inside the roundRobin call that opened it.
  const pausable = (items: number[], valve: Valve) =>
    new Observable<number>((s) => {
      let i = 0;
      const pump = (): void => {
        while (i < items.length) {
          if (!valve.isOpen) return void valve.onOpen(pump);
          s.next(items[i++]!);
        }
        s.complete();
      };
      pump();
    });
  const slow = new Subject<number>();
  const valve = new Valve();
  const seen: number[] = [];
  roundRobin([slow, pausable(range(100, 10), valve)], { queueSize: 4, valves: [undefined, valve] }).subscribe((x) =>
    seen.push(x),
  );
  for (let i = 0; i < 10; i++) slow.next(i);
  slow.complete();
  t.deepEqual(
    seen,
    range(0, 10).flatMap((i) => [i, 100 + i]),
  );
});

test('unsubscribing early unsubscribes every source', (t) => {
  let live = 0;
  const counted = () =>
    new Observable<number>((s) => {
      live++;
      s.next(1);
      return () => live--;
    });
  const sub = interleave([counted(), counted()], { rng: new Rng(0), bufferSize: 1 })
    .pipe(take(1))
    .subscribe();
  t.is(live, 0);
  sub.unsubscribe();
  const open = roundRobin([counted(), counted()]).subscribe();
  t.is(live, 2);
  open.unsubscribe();
  t.is(live, 0);
});
