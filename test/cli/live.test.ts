import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateLabelledClips } from '../../fixtures/syntheticVideos.ts';
import { freePort, serveTestStream, silentServer, testStreamToStdout } from '../pipeline/_liveServer.ts';

const CLI = join(import.meta.dirname, '..', '..', 'bin', 'tempo-ssl.js');
const SMALL = [
  '--backend',
  'wasm',
  'pretrain',
  '--tasks',
  'order',
  '--batch',
  '4',
  '--width',
  '32',
  '--height',
  '32',
  '--feature-size',
  '16',
  '--json',
];

interface Running {
  child: ChildProcess;
  exit: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** Starts the CLI; `stdin` is piped from the given process's stdout when given. */
function start(args: string[], stdinFrom?: ChildProcess): Running {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: [stdinFrom ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  if (stdinFrom) {
    stdinFrom.stdout!.pipe(child.stdin!);
    child.stdin!.on('error', () => {});
  }
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exit = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, exit };
}

/** Polls the run's checkpoint until it holds at least `step` steps (or the process ended). */
async function checkpointAt(out: string, step: number, run: Running): Promise<number> {
  let ended = false;
  void run.exit.then(() => (ended = true));
  for (;;) {
    const saved = await savedStep(out);
    if (saved >= step || ended) return saved;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function savedStep(out: string): Promise<number> {
  const path = join(out, 'checkpoint', 'state.json');
  if (!existsSync(path)) return 0;
  try {
    return (JSON.parse(await readFile(path, 'utf8')) as { step: number }).step;
  } catch {
    return 0; // caught mid-rename
  }
}

let dir: string;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-live-'));
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

test('pretraining on a live tcp stream runs until SIGTERM, checkpoints, exits 0, and --resume continues', async (t) => {
  const out = join(dir, 'tcp');
  const port = await freePort();
  const url = `tcp://127.0.0.1:${port}`;
  let server = serveTestStream(port);
  try {
    const first = start([...SMALL, '--video', url, '--out', out, '--checkpoint-every', '3']);
    const saved = await checkpointAt(out, 3, first);
    t.true(saved >= 3, (await Promise.race([first.exit, Promise.resolve(undefined)]))?.stderr ?? '');
    first.child.kill('SIGTERM');
    const result = await first.exit;
    t.is(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout);
    t.is(summary.stoppedBy, 'signal');
    t.is(await savedStep(out), summary.steps);
    t.true(existsSync(join(out, 'encoder', 'model.json')));

    server.kill();
    await server.done;
    server = serveTestStream(port);
    const resumed = start([...SMALL, '--video', url, '--out', out, '--checkpoint-every', '3', '--resume']);
    await checkpointAt(out, summary.steps + 3, resumed);
    resumed.child.kill('SIGINT');
    const again = await resumed.exit;
    t.is(again.code, 0, again.stderr);
    const next = JSON.parse(again.stdout);
    t.is(next.startStep, summary.steps);
    t.true(next.steps >= summary.steps + 3);
  } finally {
    server.kill();
  }
});

test('pretraining reads a live stream from stdin and stops cleanly on SIGTERM', async (t) => {
  const out = join(dir, 'stdin');
  const source = testStreamToStdout();
  try {
    const run = start([...SMALL, '--video', '-', '--out', out, '--checkpoint-every', '2'], source);
    const saved = await checkpointAt(out, 2, run);
    t.true(saved >= 2);
    run.child.kill('SIGTERM');
    const result = await run.exit;
    t.is(result.code, 0, result.stderr);
    t.is(JSON.parse(result.stdout).stoppedBy, 'signal');
  } finally {
    // ffmpeg blocked on a full pipe ignores SIGTERM until its write returns.
    source.stdout!.destroy();
    source.kill('SIGKILL');
  }
});

test('a live sender that goes silent stops the run with a one-line StreamStalledError', async (t) => {
  const server = await silentServer();
  try {
    const url = `tcp://127.0.0.1:${server.port}`;
    const result = await start([...SMALL, '--video', url, '--out', join(dir, 'stall'), '--stall-timeout', '1500']).exit;
    t.is(result.code, 1);
    t.regex(result.stderr, new RegExp(`tempo-ssl: live stream ${url} sent no frame for 1500 ms`));
  } finally {
    await server.close();
  }
});

test('--on-bad-input skip names the bad video in the summary and trains on the rest; fail stops with its error', async (t) => {
  const { clips } = await generateLabelledClips({
    dir: join(dir, 'clips'),
    seed: 3,
    count: 2,
    width: 32,
    height: 32,
    frames: 24,
  });
  const bad = join(dir, 'clips', 'not-a-video.mp4');
  await writeFile(bad, 'this is text, not video\n'.repeat(50));
  const videos = ['--video', clips[0]!.path, clips[1]!.path, bad];
  const skipped = await start([
    ...SMALL,
    ...videos,
    '--out',
    join(dir, 'skip'),
    '--steps',
    '3',
    '--on-bad-input',
    'skip',
  ]).exit;
  t.is(skipped.code, 0, skipped.stderr);
  const summary = JSON.parse(skipped.stdout);
  t.is(summary.steps, 3);
  t.is(summary.badInputs.length, 1);
  t.is(summary.badInputs[0].input, bad);
  t.regex(summary.badInputs[0].error, /not-a-video\.mp4/);

  const failed = await start([...SMALL, ...videos, '--out', join(dir, 'fail'), '--steps', '3']).exit;
  t.is(failed.code, 1);
  t.regex(failed.stderr, /tempo-ssl: .*not-a-video\.mp4/);
});

test('--shard i/N trains on its part of the inputs only', async (t) => {
  const { clips } = await generateLabelledClips({
    dir: join(dir, 'shard'),
    seed: 4,
    count: 2,
    width: 32,
    height: 32,
    frames: 24,
  });
  const out = join(dir, 'shard-run');
  const result = await start([...SMALL, '--video', join(dir, 'shard'), '--out', out, '--steps', '1', '--shard', '1/2'])
    .exit;
  t.is(result.code, 0, result.stderr);
  const run = JSON.parse(await readFile(join(out, 'run.json'), 'utf8'));
  const sorted = clips.map((c) => c.path).sort();
  t.deepEqual(run.videos, [sorted[1]]);
});

test('embed writes one JSON line per frame with source, index, timestamp and the embedding', async (t) => {
  const { clips } = await generateLabelledClips({
    dir: join(dir, 'embed-clips'),
    seed: 6,
    count: 1,
    width: 32,
    height: 32,
    frames: 24,
  });
  const model = join(dir, 'embed-run');
  const trained = await start([...SMALL, '--video', clips[0]!.path, '--out', model, '--steps', '1']).exit;
  t.is(trained.code, 0, trained.stderr);
  const file = join(dir, 'embeddings.jsonl');
  const result = await start([
    '--backend',
    'wasm',
    'embed',
    '--model',
    model,
    '--video',
    clips[0]!.path,
    '--out',
    file,
    '--fps',
    '6',
  ]).exit;
  t.is(result.code, 0, result.stderr);
  const lines = (await readFile(file, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  // 24 frames at 12 fps resampled to 6 fps.
  t.is(lines.length, 12);
  t.deepEqual(
    lines.map((l) => l.index),
    Array.from({ length: 12 }, (_, i) => i),
  );
  t.is(lines[3].timestamp, 0.5);
  t.true(
    lines.every((l) => l.source === clips[0]!.path && l.embedding.length === 16 && l.embedding.every(Number.isFinite)),
  );
});

test('a live sender that drops and comes back is reconnected to and training goes on', async (t) => {
  const out = join(dir, 'reconnect');
  const port = await freePort();
  const first = serveTestStream(port, { frames: 60 });
  let second: ReturnType<typeof serveTestStream> | undefined;
  try {
    const run = start([...SMALL, '--video', `tcp://127.0.0.1:${port}`, '--out', out, '--checkpoint-every', '2']);
    await first.done;
    second = serveTestStream(port);
    // 60 frames make about one step of order samples: this many steps need the second sender.
    const saved = await checkpointAt(out, 6, run);
    t.true(saved >= 6, `checkpoint at step ${saved}`);
    run.child.kill('SIGTERM');
    const result = await run.exit;
    t.is(result.code, 0, result.stderr);
    t.true(JSON.parse(result.stdout).steps >= 6);
  } finally {
    first.kill();
    second?.kill();
  }
});

test('a stdin stream that ends finishes the run with a checkpoint and stoppedBy data', async (t) => {
  const out = join(dir, 'stdin-end');
  const source = testStreamToStdout({ frames: 150 });
  const result = await start([...SMALL, '--video', '-', '--out', out, '--checkpoint-every', '50'], source).exit;
  t.is(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout);
  t.is(summary.stoppedBy, 'data');
  t.true(summary.steps >= 1);
  t.is(await savedStep(out), summary.steps);
});

// issue 10, item 5: a run that trained 0 steps never exits 0; it leaves no run folder behind, so it can be rerun.
test('SIGTERM stops a run whose live sender sends nothing: exit code 1, no step, no run files left', async (t) => {
  const server = await silentServer();
  const out = join(dir, 'silent-stop');
  try {
    const run = start([
      ...SMALL,
      '--video',
      `tcp://127.0.0.1:${server.port}`,
      '--out',
      out,
      '--stall-timeout',
      '60000',
    ]);
    while (run.child.exitCode === null && !existsSync(join(out, 'run.json')))
      await new Promise((resolve) => setTimeout(resolve, 200));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    run.child.kill('SIGTERM');
    const result = await run.exit;
    t.is(result.code, 1, result.stderr);
    t.regex(result.stderr, /stopped by signal before the first step/);
    t.false(existsSync(join(out, 'run.json')));
  } finally {
    await server.close();
  }
});

test('embed of a live stream runs until SIGTERM and leaves whole JSON lines', async (t) => {
  const model = join(dir, 'embed-live-run');
  const { clips } = await generateLabelledClips({
    dir: join(dir, 'embed-live-clips'),
    seed: 7,
    count: 1,
    width: 32,
    height: 32,
    frames: 24,
  });
  const trained = await start([...SMALL, '--video', clips[0]!.path, '--out', model, '--steps', '1']).exit;
  t.is(trained.code, 0, trained.stderr);
  const port = await freePort();
  const server = serveTestStream(port);
  const file = join(dir, 'live.jsonl');
  try {
    const run = start([
      '--backend',
      'wasm',
      'embed',
      '--model',
      model,
      '--video',
      `tcp://127.0.0.1:${port}`,
      '--out',
      file,
      '--batch',
      '8',
    ]);
    // Lines go to a temp file beside --out, renamed over it when embed stops (issue 10, item 7).
    const written = async (): Promise<number> => {
      const temp = (await readdir(dir)).find((f) => f.startsWith('.live.jsonl.'));
      return temp ? (await readFile(join(dir, temp), 'utf8')).split('\n').length : 0;
    };
    while (run.child.exitCode === null && (await written()) < 40)
      await new Promise((resolve) => setTimeout(resolve, 200));
    t.false(existsSync(file), 'no partial output under the final name');
    run.child.kill('SIGTERM');
    const result = await run.exit;
    t.is(result.code, 0, result.stderr);
    const lines = (await readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    t.true(lines.length >= 39);
    t.deepEqual(
      lines.map((l) => l.index),
      lines.map((_, i) => i),
    );
  } finally {
    server.kill();
  }
});
