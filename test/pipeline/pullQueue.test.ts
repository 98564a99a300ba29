import test from 'ava';
import { Observable, range } from 'rxjs';
import { PullQueue } from '../../pipeline/pullQueue.ts';
import type { Valve } from '../../core/valve.ts';

/** A source that emits 0..count-1 of `epoch * 100 + i`, pausing while the valve is closed, like ffmpeg's pipe. */
function pausable(epoch: number, valve: Valve, count: number, log: number[] = []): Observable<number> {
  return new Observable<number>((subscriber) => {
    let i = 0;
    let cancelled = false;
    const pump = (): void => {
      while (!cancelled && i < count) {
        if (!valve.isOpen) {
          valve.onOpen(() => setImmediate(pump));
          return;
        }
        log.push(i);
        subscriber.next(epoch * 100 + i++);
      }
      if (!cancelled) subscriber.complete();
    };
    setImmediate(pump);
    return () => {
      cancelled = true;
    };
  });
}

async function take<T>(queue: PullQueue<T>, n: number): Promise<(T | undefined)[]> {
  const out: (T | undefined)[] = [];
  for (let i = 0; i < n; i++) out.push(await queue.next());
  return out;
}

test('items come in order and epochs restart the source', async (t) => {
  const queue = new PullQueue((epoch, valve) => pausable(epoch, valve, 3));
  t.deepEqual(await take(queue, 7), [0, 1, 2, 100, 101, 102, 200]);
  t.deepEqual(queue.position, { epoch: 2, index: 1 });
  queue.close();
});

test("the valve stops a slow consumer's source at the high-water mark", async (t) => {
  const produced: number[] = [];
  const queue = new PullQueue((epoch, valve) => pausable(epoch, valve, 1000, produced), { highWaterMark: 4 });
  await queue.next();
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.true(produced.length <= 6, `produced ${produced.length} items while the consumer took one`);
  t.true(queue.buffered <= 4);
  await take(queue, 10);
  t.true(produced.length <= 16);
  queue.close();
});

test('a queue resumed from a position yields exactly what the first one would have', async (t) => {
  const first = new PullQueue((epoch, valve) => pausable(epoch, valve, 5));
  const all = await take(first, 12);
  first.close();
  const resumed = new PullQueue((epoch, valve) => pausable(epoch, valve, 5), { resumeFrom: { epoch: 1, index: 2 } });
  t.deepEqual(await take(resumed, 5), all.slice(7, 12));
  resumed.close();
});

test('maxEpochs ends the stream with undefined', async (t) => {
  const queue = new PullQueue(() => range(0, 2), { maxEpochs: 2 });
  t.deepEqual(await take(queue, 5), [0, 1, 0, 1, undefined]);
});

test('an error from the source rejects next()', async (t) => {
  const queue = new PullQueue(() => new Observable<number>((s) => s.error(new Error('boom'))));
  await t.throwsAsync(queue.next(), { message: 'boom' });
});

test('a source that yields nothing twice ends instead of looping', async (t) => {
  const queue = new PullQueue(() => range(0, 0));
  t.is(await queue.next(), undefined);
});
