// Samples/s of the order task's samples on one machine: taken in process from the sampler, vs published by
// `produceSamples` to a local nats-server (JetStream, file storage) and taken by the trainer's consumer
// (`brokerSamples`, acknowledged as a checkpoint would). Needs nats-server (apt-get install nats-server).
import { existsSync } from 'node:fs';
import { count as counted, lastValueFrom, take as takeFirst, tap } from 'rxjs';
import { join } from 'node:path';
import { Valve } from '../core/valve.ts';
import { Rng } from '../core/rng.ts';
import { frameShape, type FrameFormat } from '../pipeline/frameFormat.ts';
import { FrameCache } from '../pipeline/frameCache.ts';
import { connectBroker } from '../recipes/natsConnection.ts';
import { brokerSamples, produceSamples } from '../recipes/sampleStream.ts';
import { videoSamples } from '../recipes/videoSamples.ts';
import { taskReading } from '../tasks/registry.ts';
import { generateVideo } from '../fixtures/syntheticVideos.ts';
import { startNatsServer } from '../test/_natsServer.ts';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';

/** One row: where the samples came from, how many, and samples/s. */
export interface JetStreamFeedRow {
  feed: string;
  samples: number;
  samplesPerSecond: number;
  /** samples/s against the in-process row. */
  ratio: number;
}

/** Options of {@link benchJetStreamFeed}. */
export interface JetStreamFeedOptions {
  /** Folder holding `video/`. Default `$TEMPO_DATA`, else `<repo>/../shared/data`; a generated clip when absent. */
  dataDir?: string;
  samples?: number;
  size?: number;
}

export async function benchJetStreamFeed(options: JetStreamFeedOptions = {}): Promise<JetStreamFeedRow[]> {
  // 1024 order samples at 64x64 are 150 MB: under the stream's 256 MB bound, as the consumer acknowledges only at
  // the end (as a trainer does at its checkpoint).
  const count = options.samples ?? 1024;
  const size = options.size ?? 64;
  const data = options.dataDir ?? process.env.TEMPO_DATA ?? join(import.meta.dirname, '..', '..', 'shared', 'data');
  const shared = join(data, 'video', 'bikes.mp4');
  const video = existsSync(shared)
    ? shared
    : (await generateVideo({ seed: 1, label: 0, path: join(await mkdtemp(join(tmpdir(), 'tempo-js-')), 'v.mp4') }))
        .path;
  const format: FrameFormat = { width: size, height: size };
  const task = taskReading('order', 'frames').configure({ itemShape: frameShape(format) });
  // The same frame cache for both sides, filled first: the rows then measure sampling and transport, not ffmpeg.
  const frameCache = new FrameCache(512 * 2 ** 20);
  const samples = videoSamples(task, [video], format, { frameCache });
  await take(samples, count, 0);
  const t0 = performance.now();
  await take(samples, count, 1);
  const local = count / ((performance.now() - t0) / 1000);

  const server = await startNatsServer();
  try {
    const broker = await connectBroker({ url: server.url, report: () => {} });
    const t1 = performance.now();
    const producing = produceSamples(broker, {
      stream: 'BENCH',
      producer: 'bench',
      tasks: [{ name: 'order', samples }],
      batch: 32,
      limit: count,
    });
    const source = await brokerSamples(broker, ['order'], {
      stream: 'BENCH',
      batchSize: 32,
      startStep: 0,
      idleExitSeconds: 15,
    });
    let lastAt = t1;
    const got = await lastValueFrom(
      source
        .samples('order')(0, new Valve(), new Rng(0))
        .pipe(
          takeFirst(count),
          tap(() => (lastAt = performance.now())),
          counted(),
        ),
    );
    // Up to the last sample: a producer that stopped early ends the stream by the idle wait, which is not counted.
    const seconds = (lastAt - t1) / 1000;
    await source.hook.onCheckpoint?.(count / 32);
    source.close();
    await producing;
    await broker.close();
    const viaBroker = got / seconds;
    return [
      { feed: 'in process (sampler -> consumer)', samples: count, samplesPerSecond: local, ratio: 1 },
      {
        feed: 'JetStream (produce -> nats-server -> consume + ack)',
        samples: got,
        samplesPerSecond: viaBroker,
        ratio: viaBroker / local,
      },
    ];
  } finally {
    await server.close();
  }
}

/** Takes `count` samples, epoch after epoch from `first`. */
async function take(samples: ReturnType<typeof videoSamples>, count: number, first: number): Promise<void> {
  let got = 0;
  for (let epoch = first; got < count; epoch += 2) {
    got += await lastValueFrom(samples(epoch, new Valve(), new Rng(epoch)).pipe(takeFirst(count - got), counted()));
  }
}
