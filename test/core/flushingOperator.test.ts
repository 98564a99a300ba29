import test from 'ava';
import { from, lastValueFrom, Observable, toArray } from 'rxjs';
import { flushingOperator } from '../../core/flushingOperator.ts';

/** Runs of equal numbers, as the operator's example has it; a 0 in the input is refused. */
const runs = () =>
  flushingOperator<number, number[]>((emit) => {
    let run: number[] = [];
    const flush = (): void => {
      if (run.length > 0) emit(run);
      run = [];
    };
    return {
      next: (n) => {
        if (n === 0) throw new Error('zero');
        if (run.length > 0 && run[0] !== n) flush();
        run.push(n);
      },
      flush,
    };
  });

test('groups until a boundary and flushes the last group when the input completes', async (t) => {
  t.deepEqual(await lastValueFrom(from([1, 1, 2, 3, 3, 3]).pipe(runs(), toArray())), [[1, 1], [2], [3, 3, 3]]);
  t.deepEqual(await lastValueFrom(from([] as number[]).pipe(runs(), toArray())), []);
});

test('each subscription has its own state', async (t) => {
  const grouped = from([4, 4, 5]).pipe(runs());
  const [a, b] = await Promise.all([lastValueFrom(grouped.pipe(toArray())), lastValueFrom(grouped.pipe(toArray()))]);
  t.deepEqual(a, [[4, 4], [5]]);
  t.deepEqual(b, a);
});

test('a throw while taking an item errors the output and unsubscribes the input', async (t) => {
  let unsubscribed = false;
  const source = new Observable<number>((s) => {
    s.next(1);
    s.next(0);
    s.next(2);
    return () => (unsubscribed = true);
  });
  await t.throwsAsync(lastValueFrom(source.pipe(runs())), { message: 'zero' });
  t.true(unsubscribed);
});
