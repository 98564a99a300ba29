import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { firstValueFrom, lastValueFrom, take, toArray } from 'rxjs';
import { OptionError, StreamStalledError, VideoError } from '../../core/errors.ts';
import { liveFrames } from '../../pipeline/liveSource.ts';
import { Rng } from '../../core/rng.ts';
import { videoMix } from '../../pipeline/videoMix.ts';
import { videoSamples } from '../../recipes/videoSamples.ts';
import { Valve } from '../../core/valve.ts';
import { orderVerification } from '../../tasks/temporal/orderVerification.ts';
import type { PretextTask } from '../../tasks/task.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { generateLabelledClips } from '../../fixtures/syntheticVideos.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, serveTestStream, silentServer } from './_liveServer.ts';

test('frames of a tcp stream arrive with the requested size and increasing indices', async (t) => {
  const port = await freePort();
  const server = serveTestStream(port);
  try {
    const frames = await lastValueFrom(
      liveFrames(`tcp://127.0.0.1:${port}`, { width: 16, height: 16, reconnectDelayMs: 100 }).pipe(take(30), toArray()),
    );
    t.deepEqual(
      frames.map((f) => f.index),
      Array.from({ length: 30 }, (_, i) => i),
    );
    t.true(frames.every((f) => f.data.length === 16 * 16 * 3 && f.source === `tcp://127.0.0.1:${port}`));
    t.is(frames[12]!.timestamp, 1);
  } finally {
    server.kill();
  }
});

test('a dropped stream reconnects with backoff and indices and timestamps keep increasing', async (t) => {
  const port = await freePort();
  // The first server sends 20 frames and hangs up; a second one comes up on the same port a little later.
  const first = serveTestStream(port, { frames: 20 });
  let second: ReturnType<typeof serveTestStream> | undefined;
  const reconnects: number[] = [];
  try {
    const frames = await lastValueFrom(
      liveFrames(`tcp://127.0.0.1:${port}`, {
        width: 16,
        height: 16,
        reconnectDelayMs: 100,
        maxReconnects: 8,
        onReconnect: ({ attempt }) => {
          reconnects.push(attempt);
          // Restart the sender only after a refused try, so the backoff really runs.
          if (attempt === 2) second = serveTestStream(port, { frames: 20 });
        },
      }).pipe(take(35), toArray()),
    );
    await first.done;
    t.deepEqual(
      frames.map((f) => f.index),
      Array.from({ length: 35 }, (_, i) => i),
    );
    t.true(frames.every((f, i) => i === 0 || f.timestamp > frames[i - 1]!.timestamp));
    t.true(reconnects.length >= 2, `reconnects: ${reconnects}`);
  } finally {
    first.kill();
    second?.kill();
  }
});

test('a sender that accepts but sends nothing errors with StreamStalledError naming the URL', async (t) => {
  const server = await silentServer();
  try {
    const url = `tcp://127.0.0.1:${server.port}`;
    let child: ChildProcess | undefined;
    const error = await t.throwsAsync(
      firstValueFrom(liveFrames(url, { width: 16, height: 16, stallTimeoutMs: 1500, onProcess: (c) => (child = c) })),
      {
        instanceOf: StreamStalledError,
      },
    );
    t.true(error instanceof VideoError);
    t.regex(error!.message, new RegExp(`${url}.*no frame for 1500 ms.*stallTimeoutMs`));
    // The stalled ffmpeg is stopped, not left hanging (on a loaded machine the stall can even come before it started).
    if (child) {
      await new Promise((resolve) =>
        child!.exitCode !== null || child!.signalCode !== null ? resolve(0) : child!.once('exit', resolve),
      );
      t.not(child.signalCode ?? child.exitCode, null);
    }
  } finally {
    await server.close();
  }
});

test('a source that never comes back gives up after maxReconnects with the connection error', async (t) => {
  const port = await freePort();
  const delays: number[] = [];
  const error = await t.throwsAsync(
    firstValueFrom(
      liveFrames(`tcp://127.0.0.1:${port}`, {
        width: 16,
        height: 16,
        maxReconnects: 3,
        reconnectDelayMs: 20,
        onReconnect: ({ delayMs }) => delays.push(delayMs),
      }),
    ),
    { instanceOf: VideoError },
  );
  t.deepEqual(delays, [20, 40, 80]);
  t.regex(error!.message, /Connection refused/);
});

test('bad options are refused when the stream is built', (t) => {
  t.throws(() => liveFrames('tcp://127.0.0.1:1', { maxReconnects: -1 }), {
    instanceOf: OptionError,
    message: /maxReconnects/,
  });
  t.throws(() => liveFrames('tcp://127.0.0.1:1', { stallTimeoutMs: 0 }), {
    instanceOf: OptionError,
    message: /stallTimeoutMs/,
  });
  t.throws(() => liveFrames('tcp://127.0.0.1:1', { reconnectDelayMs: 500, maxReconnectDelayMs: 100 }), {
    instanceOf: OptionError,
    message: /maxReconnectDelayMs/,
  });
  t.throws(() => liveFrames('-', {}), { instanceOf: OptionError, message: /width\/height/ });
});

// videoMix: how pretraining reads several files (seeded interleave) and mixes them with live inputs.
let clipsDir: string;
let clips: string[];
test.before(async () => {
  clipsDir = await mkdtemp(join(tmpdir(), 'tempo-mix-'));
  clips = (
    await generateLabelledClips({ dir: clipsDir, seed: 5, count: 3, width: 32, height: 32, frames: 12 })
  ).clips.map((c) => c.path);
});
test.after.always(() => rm(clipsDir, { recursive: true, force: true }));

const format = { width: 16, height: 16 };
const ids = (frames: { source: string; index: number }[]) => frames.map((f) => `${f.source.slice(-6)}#${f.index}`);

test('several files are interleaved reproducibly: the same generator gives the same epoch, and videos mix', async (t) => {
  const epoch = () => lastValueFrom(videoMix(clips, format, new Rng(9), undefined, { bufferSize: 8 }).pipe(toArray()));
  const [a, b] = [await epoch(), await epoch()];
  t.is(a.length, 36);
  t.deepEqual(ids(a), ids(b));
  t.true(new Set(a.slice(0, 12).map((f) => f.source)).size > 1, 'the first 12 frames come from more than one video');
  const other = await lastValueFrom(videoMix(clips, format, new Rng(10), undefined, { bufferSize: 8 }).pipe(toArray()));
  t.notDeepEqual(ids(other), ids(a));
});

test('with badInputs skip a broken file is reported and the others still stream; with fail it errors', async (t) => {
  const bad = join(clipsDir, 'broken.mp4');
  await writeFile(bad, 'not a video');
  const reported: string[] = [];
  const frames = await lastValueFrom(
    videoMix([...clips, bad], format, new Rng(1), undefined, {
      badInputs: 'skip',
      onBadInput: (input) => reported.push(input),
    }).pipe(toArray()),
  );
  t.is(frames.length, 36);
  t.deepEqual(reported, [bad]);
  await t.throwsAsync(lastValueFrom(videoMix([...clips, bad], format, new Rng(1))), {
    instanceOf: VideoError,
    message: /broken\.mp4/,
  });
});

test('a live input is mixed with files replayed without end', async (t) => {
  const port = await freePort();
  const server = serveTestStream(port);
  try {
    const frames = await lastValueFrom(
      videoMix([`tcp://127.0.0.1:${port}`, clips[0]!], format, new Rng(2), undefined, { bufferSize: 4 }).pipe(
        take(60),
        toArray(),
      ),
    );
    const live = frames.filter((f) => f.source.startsWith('tcp://'));
    t.true(live.length >= 25 && live.length <= 35, `live frames: ${live.length}`);
    // 12 frames in the file, so 60 mixed frames replay it.
    t.true(frames.filter((f) => f.source === clips[0] && f.index === 0).length >= 2);
  } finally {
    server.kill();
  }
});

test('a resumed live run passes over placeholders, not live frames, and later epochs of a live input are empty', async (t) => {
  const port = await freePort();
  const server = serveTestStream(port);
  try {
    const task = orderVerification as unknown as PretextTask<Frame>;
    const samples = videoSamples(task, [`tcp://127.0.0.1:${port}`], format, { liveSkip: 8 });
    const first = await lastValueFrom(samples(3, new Valve(), new Rng(1)).pipe(take(12), toArray()));
    t.true(
      first.slice(0, 8).every((s) => s.inputs.length === 0),
      'placeholders first',
    );
    t.true(
      first.slice(8).every((s) => s.inputs.length > 0 && s.source === `tcp://127.0.0.1:${port}`),
      'then live samples',
    );
    t.deepEqual(await lastValueFrom(samples(4, new Valve(), new Rng(1)).pipe(toArray())), []);
  } finally {
    server.kill();
  }
});
