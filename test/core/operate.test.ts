import test, { type ExecutionContext } from 'ava';
import { Observable, Subject, concat, from, lastValueFrom, of, take, throwError, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { operate } from '../../core/operate.ts';

type RunHelpers = Parameters<Parameters<TestScheduler['run']>[0]>[0];
const marbles = (t: ExecutionContext, body: (helpers: RunHelpers) => void) =>
  new TestScheduler((a, b) => t.deepEqual(a, b)).run(body);

/** Pairs of consecutive items, the odd one out flushed on completion; counts its finalizations; refuses 'z'. */
const pairs = (finalized: { count: number } = { count: 0 }) =>
  operate<string, string>((subscriber) => {
    let held: string | undefined;
    return {
      next: (item) => {
        if (item === 'z') throw new Error('z refused');
        if (held === undefined) held = item;
        else {
          subscriber.next(held + item);
          held = undefined;
        }
      },
      complete: () => {
        if (held !== undefined) subscriber.next(held);
      },
      finalize: () => {
        finalized.count++;
        held = undefined;
      },
    };
  });

test('the output completes with its input, after what complete() flushes', (t) => {
  marbles(t, ({ cold, expectObservable, expectSubscriptions }) => {
    const source = cold('a-b-c-|');
    expectObservable(source.pipe(pairs())).toBe('--x---(y|)', { x: 'ab', y: 'c' });
    expectSubscriptions(source.subscriptions).toBe('^-----!');
  });
});

test('an input error travels downstream, and nothing is flushed', (t) => {
  marbles(t, ({ cold, expectObservable, expectSubscriptions }) => {
    const source = cold('a-b-c-#', undefined, new Error('decode failed'));
    expectObservable(source.pipe(pairs())).toBe('--x---#', { x: 'ab' }, new Error('decode failed'));
    expectSubscriptions(source.subscriptions).toBe('^-----!');
  });
});

test('a throw in a handler errors the output and unsubscribes the input', (t) => {
  marbles(t, ({ cold, expectObservable, expectSubscriptions }) => {
    const source = cold('a-b-z-c-|');
    expectObservable(source.pipe(pairs())).toBe('--x-#', { x: 'ab' }, new Error('z refused'));
    expectSubscriptions(source.subscriptions).toBe('^---!');
  });
});

test('a throw while flushing errors the output', async (t) => {
  const failing = operate<number, number>(() => ({
    next: () => undefined,
    complete: () => {
      throw new Error('flush failed');
    },
  }));
  await t.throwsAsync(lastValueFrom(from([1, 2]).pipe(failing)), { message: 'flush failed' });
});

test('an early unsubscription unsubscribes the input', (t) => {
  marbles(t, ({ cold, expectObservable, expectSubscriptions }) => {
    const source = cold('a-b-c-d-e-f-|');
    expectObservable(source.pipe(pairs()), '^------!').toBe('--x---y', { x: 'ab', y: 'cd' });
    expectSubscriptions(source.subscriptions).toBe('^------!');
  });
});

test('a downstream take stops a synchronous source and the handlers at once', async (t) => {
  let pulled = 0;
  let unsubscribed = false;
  const endless = new Observable<string>((s) => {
    // Stops only when its subscriber closes.
    while (!s.closed) {
      pulled++;
      s.next(String(pulled));
    }
    return () => (unsubscribed = true);
  });
  t.deepEqual(await lastValueFrom(endless.pipe(pairs(), take(2), toArray())), ['12', '34']);
  t.is(pulled, 4);
  t.true(unsubscribed);
});

const finalizesOnce = test.macro(async (t, end: (finalized: { count: number }) => Promise<unknown> | void) => {
  const finalized = { count: 0 };
  await end(finalized);
  t.is(finalized.count, 1);
});

test('the teardown runs once on completion', finalizesOnce, (finalized) =>
  lastValueFrom(from(['a', 'b', 'c']).pipe(pairs(finalized), toArray())),
);
test('the teardown runs once on an input error', finalizesOnce, (finalized) =>
  lastValueFrom(
    concat(
      of('a'),
      throwError(() => new Error('boom')),
    ).pipe(pairs(finalized)),
  ).catch(() => undefined),
);
test('the teardown runs once on a throw in a handler', finalizesOnce, (finalized) =>
  lastValueFrom(from(['a', 'z', 'b']).pipe(pairs(finalized))).catch(() => undefined),
);
test('the teardown runs once on a downstream take', finalizesOnce, (finalized) =>
  lastValueFrom(from(['a', 'b', 'c', 'd']).pipe(pairs(finalized), take(1))),
);
test('the teardown runs once when unsubscribed by hand, twice', finalizesOnce, (finalized) => {
  const source = new Subject<string>();
  const subscription = source.pipe(pairs(finalized)).subscribe();
  source.next('a');
  subscription.unsubscribe();
  subscription.unsubscribe();
  source.complete();
});

test('each subscription has its own state and its own teardown', async (t) => {
  const finalized = { count: 0 };
  const paired = from(['a', 'b', 'c']).pipe(pairs(finalized));
  const [first, second] = await Promise.all([
    lastValueFrom(paired.pipe(toArray())),
    lastValueFrom(paired.pipe(toArray())),
  ]);
  t.deepEqual(first, ['ab', 'c']);
  t.deepEqual(second, first);
  t.is(finalized.count, 2);
});

test('an unsubscribed output takes nothing more from a subject', (t) => {
  const source = new Subject<string>();
  const seen: string[] = [];
  const subscription = source.pipe(pairs()).subscribe((x) => seen.push(x));
  source.next('a');
  source.next('b');
  subscription.unsubscribe();
  t.false(source.observed);
  source.next('c');
  source.next('d');
  t.deepEqual(seen, ['ab']);
});

test('a throw in init errors the output', async (t) => {
  const broken = operate<number, number>(() => {
    throw new Error('bad state');
  });
  await t.throwsAsync(lastValueFrom(from([1]).pipe(broken)), { message: 'bad state' });
});

test('the example: running sums', async (t) => {
  const sums = operate<number, number>((subscriber) => {
    let sum = 0;
    return { next: (n) => subscriber.next((sum += n)), finalize: () => (sum = 0) };
  });
  t.deepEqual(await lastValueFrom(from([1, 2, 3]).pipe(sums, toArray())), [1, 3, 6]);
});
