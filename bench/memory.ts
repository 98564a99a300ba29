/**
 * Memory over a long stream: at least `frames` (default 20,000) 32x32 frames from an endless live testsrc stream
 * (ffmpeg serving mpeg-ts on loopback tcp, read by `videoSamples` -> `liveFrames`, as `pretrain` does) through the order task's sampler and the shared
 * trainer. Every `every` steps it prints process RSS, V8 heap and `tf.memory().numTensors`; all should stay flat
 * after warm-up, as the valve bounds what decoding queues and the trainer disposes every batch.
 *
 *   npx tsx bench/memory.ts [--frames 20000] [--every 10] [--batch 16]
 */
import * as tf from '@tensorflow/tfjs';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { pipe, tap } from 'rxjs';
import { printTable } from '../cli/options.ts';
import { selectBackend } from '../models/backend.ts';
import { buildFrameEncoder } from '../models/frameEncoder.ts';
import { resolveFfmpegPath } from '../pipeline/ffmpegPaths.ts';
import type { Frame } from '../pipeline/frame.ts';
import { train } from '../training/trainer.ts';
import { videoSamples } from '../recipes/videoSamples.ts';
import type { PretextTask } from '../tasks/task.ts';
import { orderVerification } from '../tasks/temporal/orderVerification.ts';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '20000' },
    every: { type: 'string', default: '10' },
    batch: { type: 'string', default: '16' },
  },
});
const targetFrames = Number(values.frames);
const every = Number(values.every);
const batchSize = Number(values.batch);
const size = 32;

await selectBackend({ backend: 'wasm', log: () => {} });
const port = await freePort();
// Endless and not real-time: the decoder's valve paces the sender through tcp backpressure.
const server = spawn(
  resolveFfmpegPath(),
  [
    '-hide_banner',
    '-loglevel',
    'error',
    '-f',
    'lavfi',
    '-i',
    `testsrc=size=64x64:rate=25`,
    '-flush_packets',
    '1',
    '-f',
    'mpegts',
    `tcp://127.0.0.1:${port}?listen`,
  ],
  { stdio: 'ignore' },
);

let frames = 0;
const order = orderVerification as unknown as PretextTask<Frame>;
// The order task, counting the frames its sampler sees.
const task: PretextTask<Frame> = {
  ...order,
  sampler: (context) =>
    pipe(
      tap(() => frames++),
      order.sampler(context),
    ),
};
const encoder = buildFrameEncoder({ inputShape: [size, size, 3], featureSize: 32, seed: 0 });
const controller = new AbortController();
const rows: Record<string, number>[] = [];
const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
const started = performance.now();

const result = await train({
  encoder,
  itemShape: [size, size, 3],
  steps: Number.MAX_SAFE_INTEGER,
  batchSize,
  signal: controller.signal,
  tasks: [
    {
      task,
      // The path `tempo-ssl pretrain --video tcp://...` takes: videoSamples -> liveFrames -> sampler.
      samples: videoSamples(
        task,
        [`tcp://127.0.0.1:${port}`],
        { width: size, height: size },
        { signal: controller.signal },
      ),
    },
  ],
  onStep: (m) => {
    if (m.step % every === 0 || m.step === 1) {
      const usage = process.memoryUsage();
      rows.push({
        step: m.step,
        frames,
        rssMB: mb(usage.rss),
        heapMB: mb(usage.heapUsed),
        numTensors: tf.memory().numTensors,
        loss: m.loss,
        seconds: Math.round((performance.now() - started) / 100) / 10,
      });
      console.log(JSON.stringify(rows.at(-1)));
    }
    if (frames >= targetFrames) controller.abort();
  },
});
server.kill('SIGKILL');
console.log(
  `\n${result.steps} steps, ${frames} frames of ${size}x${size} streamed through order sampling and training (batch ${batchSize})\n`,
);
printTable(rows);
const warm = rows.filter((r) => r.step >= 5 * every);
if (warm.length > 1) {
  const span = (key: string) => Math.max(...warm.map((r) => r[key]!)) - Math.min(...warm.map((r) => r[key]!));
  console.log(
    `\nafter warm-up (step >= ${5 * every}): RSS range ${span('rssMB').toFixed(1)} MB, heap range ${span('heapMB').toFixed(1)} MB, numTensors range ${span('numTensors')}`,
  );
}
process.exit(0);

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port: free } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return free;
}
