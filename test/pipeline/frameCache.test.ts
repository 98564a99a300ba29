import test from 'ava';
import { copyFileSync, mkdirSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom, lastValueFrom, take, toArray } from 'rxjs';
import { generateEdgeCaseVideos } from '../../fixtures/edgeCaseVideos.ts';
import { FrameCache } from '../../pipeline/frameCache.ts';
import type { DecodeOptions } from '../../pipeline/decodeFrames.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { Valve } from '../../core/valve.ts';
import { OptionError } from '../../core/errors.ts';

const dir = join(tmpdir(), 'tempo-ssl-fixtures', 'frameCache-test');
let clip: string;
let truncated: string;

test.before(async () => {
  mkdirSync(dir, { recursive: true });
  const edge = await generateEdgeCaseVideos(dir);
  clip = edge.valid;
  truncated = edge.truncatedMp4;
});

/** Decodes through `cache`, counting the ffmpeg processes started. */
async function decode(cache: FrameCache, input: string, options: DecodeOptions = {}) {
  let processes = 0;
  const frames = await lastValueFrom(
    cache.decode(input, { width: 16, height: 16, ...options, onProcess: () => processes++ }).pipe(toArray()),
  );
  return { frames, processes };
}

const bytesOf = (frames: Frame[]) => frames.map((f) => Buffer.from(f.data).toString('base64'));

test('a file decoded whole is replayed from memory: the same frames, no second ffmpeg', async (t) => {
  const cache = new FrameCache(2 ** 20);
  const first = await decode(cache, clip);
  const second = await decode(cache, clip);
  t.is(first.processes, 1);
  t.is(second.processes, 0);
  t.is(second.frames.length, 48);
  t.deepEqual(bytesOf(second.frames), bytesOf(first.frames));
  t.deepEqual(
    second.frames.map((f) => [f.index, f.timestamp, f.source]),
    first.frames.map((f) => [f.index, f.timestamp, f.source]),
  );
  // The buffers under the frames: each frame's own bytes at least, and reads shared by frames counted once.
  const buffers = new Set(first.frames.map((f) => f.data.buffer));
  t.is(
    cache.bytes,
    [...buffers].reduce((n, b) => n + b.byteLength, 0),
  );
  t.true(cache.bytes >= 48 * 16 * 16 * 3);
  // Other decode options are another entry.
  t.is((await decode(cache, clip, { pixelFormat: 'gray' })).processes, 1);
});

test('what passes the budget, stops early or fails is not kept', async (t) => {
  const small = new FrameCache(10 * 16 * 16 * 3);
  await decode(small, clip);
  t.is((await decode(small, clip)).processes, 1, 'over budget: decoded again');
  t.is(small.bytes, 0);

  const cache = new FrameCache(2 ** 20);
  await firstValueFrom(cache.decode(clip, { width: 16, height: 16 }).pipe(take(3), toArray()));
  t.is((await decode(cache, clip)).processes, 1, 'stopped early: decoded again');

  // A file that fails fails again (it is decoded again, not replayed as empty).
  await t.throwsAsync(decode(cache, truncated));
  await t.throwsAsync(decode(cache, truncated));
  t.is(new FrameCache(0).bytes, 0);
  t.throws(() => new FrameCache(-1), { instanceOf: OptionError });
});

test('a file changed on disk is decoded again', async (t) => {
  const copy = join(dir, 'changed.mp4');
  copyFileSync(clip, copy);
  const cache = new FrameCache(2 ** 20);
  await decode(cache, copy);
  utimesSync(copy, new Date(), new Date(Date.now() + 5000));
  t.is((await decode(cache, copy)).processes, 1);
});

test('a replay emits only while the valve is open', async (t) => {
  const cache = new FrameCache(2 ** 20);
  await decode(cache, clip);
  const valve = new Valve();
  const seen: number[] = [];
  const done = new Promise<void>((resolve) => {
    cache.decode(clip, { width: 16, height: 16, valve }).subscribe({
      next: (frame) => {
        seen.push(frame.index);
        if (frame.index === 4) valve.close();
      },
      complete: resolve,
    });
  });
  await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(seen, [0, 1, 2, 3, 4]);
  valve.open();
  await done;
  t.is(seen.length, 48);
});
