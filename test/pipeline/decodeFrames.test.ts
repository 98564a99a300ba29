import test from 'ava';
import { spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom, lastValueFrom, take, tap, toArray, type Observable } from 'rxjs';
import { generateEdgeCaseVideos, type EdgeCaseVideos } from '../../fixtures/edgeCaseVideos.ts';
import { decodeFrames, type DecodeOptions } from '../../pipeline/decodeFrames.ts';
import { NoVideoStreamError, OptionError, VideoDecodeError, VideoNotFoundError } from '../../core/errors.ts';
import { resolveFfmpegPath } from '../../pipeline/ffmpegPaths.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { probeVideo } from '../../pipeline/probeVideo.ts';
import { Valve } from '../../core/valve.ts';

const dir = join(tmpdir(), 'tempo-ssl-fixtures', 'decodeFrames-test');
const testsrc = join(dir, 'testsrc-64x48-12fps-48.mp4');
const red = join(dir, 'red-32x32.mp4');
const long = join(dir, 'testsrc-64x64-30fps-600.mp4');
let edge: EdgeCaseVideos;

/** Writes a lavfi source to `path` unless it is there (ffmpeg writes atomically enough for one test file). */
function lavfi(path: string, source: string, frames: number): void {
  if (existsSync(path)) return;
  const args = [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    source,
    '-frames:v',
    String(frames),
    '-c:v',
    'libx264',
    '-pix_fmt',
    'yuv420p',
    path,
  ];
  const result = spawnSync(resolveFfmpegPath(), args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`fixture ${path}: ${result.stderr}`);
}

test.before(async () => {
  mkdirSync(dir, { recursive: true });
  lavfi(testsrc, 'testsrc=size=64x48:rate=12', 48);
  lavfi(red, 'color=c=red:size=32x32:rate=10', 10);
  lavfi(long, 'testsrc=size=64x64:rate=30', 600);
  edge = await generateEdgeCaseVideos(join(dir, 'edge'));
});

const all = (frames$: Observable<Frame>) => lastValueFrom(frames$.pipe(toArray()), { defaultValue: [] as Frame[] });

/** Collects frames until the stream errors; returns both. */
async function framesThenError(frames$: Observable<Frame>): Promise<{ frames: Frame[]; error: unknown }> {
  const frames: Frame[] = [];
  return new Promise((resolve) =>
    frames$.subscribe({
      next: (f) => frames.push(f),
      error: (error) => resolve({ frames, error }),
      complete: () => resolve({ frames, error: undefined }),
    }),
  );
}

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

async function waitFor(condition: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (condition()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return condition();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('every source frame comes out once, at the source size, as HWC rgb with timestamps', async (t) => {
  const frames = await all(decodeFrames(testsrc));
  const probed = await probeVideo(testsrc, { countFrames: true });
  t.is(frames.length, probed.frameCount!);
  t.is(frames.length, 48);
  for (const [i, f] of frames.entries()) {
    t.like(f, { width: 64, height: 48, channels: 3, index: i, source: testsrc });
    t.is(f.data.length, 64 * 48 * 3);
    t.is(f.timestamp, i / 12);
  }
});

/** What bare ffmpeg writes for the first 4 s of `long` at 37x23 rgb. */
function rawLong(): Buffer {
  const args = ['-v', 'error', '-i', long, '-map', '0:v:0', '-vsync', '0', '-vf', 'scale=37:23', '-t', '4'];
  args.push('-pix_fmt', 'rgb24', '-f', 'rawvideo', '-');
  return spawnSync(resolveFfmpegPath(), args, { maxBuffer: 1 << 26 }).stdout;
}

test('frames match raw ffmpeg output byte for byte when frames straddle pipe chunks', async (t) => {
  // 37x23 rgb frames (2553 bytes) never line up with ffmpeg's 64 KiB pipe chunks.
  const frames = await all(decodeFrames(long, { width: 37, height: 23, duration: 4 }));
  const raw = rawLong();
  t.is(frames.length, raw.length / 2553);
  t.deepEqual(Buffer.concat(frames.map((f) => f.data)), raw);
});

test('frames never change once emitted, whether views of one read of many frames or copied across reads', async (t) => {
  // A valve closed at first lets ffmpeg fill the pipe: the reads after it opens hold many 2553-byte frames each,
  // and split some of them.
  const valve = new Valve();
  valve.close();
  setTimeout(() => valve.open(), 300);
  const atEmit: Buffer[] = [];
  const frames = await all(
    decodeFrames(long, { width: 37, height: 23, duration: 4, valve }).pipe(
      tap((f) => atEmit.push(Buffer.from(f.data))),
    ),
  );
  t.is(frames.length, 120);
  t.deepEqual(Buffer.concat(frames.map((f) => f.data)), rawLong());
  t.deepEqual(
    frames.map((f) => Buffer.from(f.data)),
    atEmit,
  );
  t.true(new Set(frames.map((f) => f.data.buffer)).size < frames.length, 'frames of one read share its buffer');
  // A plain Uint8Array, not a Buffer view: its slice() copies.
  t.true(frames.every((f) => Object.getPrototypeOf(f.data) === Uint8Array.prototype));
  const first = frames[0]!.data;
  const copy = first.slice();
  copy[0] = (copy[0]! + 1) % 256;
  t.not(first[0], copy[0]);
});

test('width and height scale the frames; one of them alone keeps the aspect ratio', async (t) => {
  const scaled = await firstValueFrom(decodeFrames(testsrc, { width: 32, height: 32 }));
  t.like(scaled, { width: 32, height: 32 });
  t.is(scaled.data.length, 32 * 32 * 3);
  const byWidth = await firstValueFrom(decodeFrames(testsrc, { width: 32 }));
  t.like(byWidth, { width: 32, height: 24 });
  const byHeight = await firstValueFrom(decodeFrames(testsrc, { height: 24 }));
  t.like(byHeight, { width: 32, height: 24 });
});

test('with a size and no fps the timestamps use the rate ffmpeg reports for the input', async (t) => {
  const frames = await all(decodeFrames(testsrc, { width: 16, height: 16 }));
  t.is(frames.length, 48);
  t.is(frames[7]!.timestamp, 7 / 12);
});

test('a URL goes to ffmpeg as it is', async (t) => {
  const url = `file://${testsrc}`;
  const frames = await all(decodeFrames(url, { width: 16, height: 16 }));
  t.is(frames.length, 48);
  t.is(frames[0]!.source, url);
  const { error } = await framesThenError(decodeFrames(`file://${missing()}`, { width: 8, height: 8 }));
  t.true(error instanceof VideoNotFoundError, `got ${String(error)}`);
});

test('gray frames have one channel', async (t) => {
  const frames = await all(decodeFrames(testsrc, { pixelFormat: 'gray', width: 16, height: 16 }));
  t.is(frames.length, 48);
  t.like(frames[0], { channels: 1 });
  t.is(frames[0]!.data.length, 16 * 16);
});

test('fps resamples the stream and sets the timestamps', async (t) => {
  const frames = await all(decodeFrames(testsrc, { fps: 6, width: 16, height: 16 }));
  t.is(frames.length, 24);
  t.is(frames[5]!.timestamp, 5 / 6);
});

test('start and duration cut the decoded range', async (t) => {
  const frames = await all(decodeFrames(testsrc, { start: 1, duration: 2, width: 16, height: 16 }));
  t.is(frames.length, 24);
  t.is(frames[0]!.timestamp, 0);
});

test('a solid red source decodes to red pixels', async (t) => {
  const frames = await all(decodeFrames(red));
  t.is(frames.length, 10);
  for (const f of frames.slice(0, 2)) {
    for (let i = 0; i < f.data.length; i += 3) {
      t.true(
        f.data[i]! > 240 && f.data[i + 1]! < 16 && f.data[i + 2]! < 16,
        `pixel ${i / 3}: ${Array.from(f.data.subarray(i, i + 3))}`,
      );
    }
  }
});

test('rotated clips come out upright with width and height swapped for 90 and 270', async (t) => {
  for (const r of edge.rotated) {
    const f = await firstValueFrom(decodeFrames(r.path, { pixelFormat: 'gray' }));
    t.like(f, { width: 64, height: 48 }, `rotation ${r.rotation}`);
    const at = (x: number, y: number) => f.data[y * f.width + x]!;
    t.true(at(8, 6) > 200, `rotation ${r.rotation}: top-left is bright`);
    t.true(at(56, 6) < 50 && at(8, 42) < 50 && at(56, 42) < 50, `rotation ${r.rotation}: other quadrants are dark`);
  }
});

const expectError = test.macro(
  async (
    t,
    path: () => string,
    options: DecodeOptions,
    errorClass: abstract new (...args: never[]) => Error,
    minFrames?: number,
  ) => {
    const { frames, error } = await framesThenError(decodeFrames(path(), options));
    t.true(error instanceof errorClass, `got ${String(error)}`);
    t.true((error as Error).message.includes(path()), 'the message names the input');
    t.true(frames.length >= (minFrames ?? 0));
  },
);

const missing = () => join(dir, 'does-not-exist.mp4');
test('a missing file errors with VideoNotFoundError', expectError, missing, {}, VideoNotFoundError);
test(
  'a missing file errors with VideoNotFoundError when the size is given',
  expectError,
  missing,
  { width: 8, height: 8 },
  VideoNotFoundError,
);
test('a truncated mp4 errors with VideoDecodeError', expectError, () => edge.truncatedMp4, {}, VideoDecodeError);
test(
  'a truncated mp4 errors with VideoDecodeError when the size is given',
  expectError,
  () => edge.truncatedMp4,
  { width: 8, height: 8 },
  VideoDecodeError,
);
test('an audio-only file errors with NoVideoStreamError', expectError, () => edge.audioOnly, {}, NoVideoStreamError);
test(
  'an audio-only file errors with NoVideoStreamError when size and fps are given',
  expectError,
  () => edge.audioOnly,
  { width: 8, height: 8, fps: 5 },
  NoVideoStreamError,
);
test('a text file named .mp4 errors with VideoDecodeError', expectError, () => edge.notAVideo, {}, VideoDecodeError);
test(
  'a truncated mkv emits the frames it holds, then errors with VideoDecodeError',
  expectError,
  () => edge.truncatedMkv,
  {},
  VideoDecodeError,
  1,
);

test('errors carry the tail of ffmpeg stderr', async (t) => {
  const { error } = await framesThenError(decodeFrames(edge.truncatedMkv, { width: 8, height: 8, fps: 12 }));
  t.true(error instanceof VideoDecodeError);
  t.regex((error as VideoDecodeError).stderrTail, /Read error/);
});

test('a cut mpeg-ts decodes the frames it holds and completes (it is a valid shorter stream)', async (t) => {
  const { frames, error } = await framesThenError(decodeFrames(edge.truncatedTs));
  t.is(error, undefined);
  t.is(frames.length, edge.truncatedTsFrames);
  t.like(frames[0], { width: 64, height: 64 });
});

const badOption = test.macro((t, options: Record<string, unknown>, name: RegExp) => {
  t.throws(() => decodeFrames(testsrc, options as DecodeOptions), { instanceOf: OptionError, message: name });
});
test('width 0 is refused when building', badOption, { width: 0 }, /width/);
test('a fractional height is refused when building', badOption, { height: 2.5 }, /height/);
test('a negative fps is refused when building', badOption, { fps: -1 }, /fps/);
test('an unknown pixel format is refused when building', badOption, { pixelFormat: 'yuv' }, /pixelFormat/);
test('a negative start is refused when building', badOption, { start: -1 }, /start/);
test('a zero duration is refused when building', badOption, { duration: 0 }, /duration/);
test('maxBufferedFrames 0 is refused when building', badOption, { maxBufferedFrames: 0 }, /maxBufferedFrames/);
test('a valve that is not a Valve is refused when building', badOption, { valve: { isOpen: true } }, /valve/);

test('stdin without width and height is refused when building', (t) => {
  t.throws(() => decodeFrames('-'), { instanceOf: OptionError, message: /stdin/ });
});

test('unsubscribing after 3 frames kills ffmpeg', async (t) => {
  let child: ChildProcess | undefined;
  const frames = await all(decodeFrames(long, { onProcess: (c) => (child = c) }).pipe(take(3)));
  t.is(frames.length, 3);
  t.truthy(child?.pid);
  t.true(await waitFor(() => processGone(child!.pid!)), 'the ffmpeg process is gone');
  t.not(child!.exitCode, 0, 'ffmpeg was stopped, not run to the end');
});

test('unsubscribing while the valve holds ffmpeg blocked still kills it', async (t) => {
  const valve = new Valve();
  let child: ChildProcess | undefined;
  const subscription = decodeFrames(long, { valve, onProcess: (c) => (child = c) }).subscribe(() => valve.close());
  t.true(await waitFor(() => child?.stdout?.isPaused() === true));
  subscription.unsubscribe();
  t.true(await waitFor(() => processGone(child!.pid!)), 'the ffmpeg process is gone');
});

test('a closed valve stops the frames and pauses ffmpeg stdout until it opens', async (t) => {
  const valve = new Valve();
  let child: ChildProcess | undefined;
  let count = 0;
  const done = all(
    decodeFrames(long, { valve, maxBufferedFrames: 4, onProcess: (c) => (child = c) }).pipe(
      // The consumer closes the valve from inside its handler, as a full queue would.
      tap(() => {
        if (++count === 5) valve.close();
      }),
    ),
  );
  t.true(await waitFor(() => child?.stdout?.isPaused() === true), 'ffmpeg stdout is paused');
  t.is(count, 5);
  await sleep(300);
  t.is(count, 5, 'no frame came through the closed valve');
  t.is(child!.exitCode, null, 'ffmpeg waits rather than exits');
  valve.open();
  const frames = await done;
  t.is(frames.length, 600);
  t.deepEqual(
    frames.map((f) => f.index),
    Array.from({ length: 600 }, (_, i) => i),
  );
});
