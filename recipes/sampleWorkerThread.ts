import { parentPort, workerData } from 'node:worker_threads';
import { bufferCount, type Subscription } from 'rxjs';
import { Rng } from '../core/rng.ts';
import { Valve } from '../core/valve.ts';
import { FrameCache } from '../pipeline/frameCache.ts';
import { frameShape } from '../pipeline/frameFormat.ts';
import { TASKS, taskReading } from '../tasks/registry.ts';
import type { FromWorker, SampleWorkerSpec, ToWorker } from './sampleWorker.ts';
import { videoSamples } from './videoSamples.ts';

// The worker side of SampleWorker: the task configured as the training thread configures it, its samples made by
// `videoSamples` with a frame cache of the worker's own, sent in messages of one batch.
const spec = workerData as SampleWorkerSpec;
const port = parentPort!;
const send = (message: FromWorker): void => port.postMessage(message);
const setup = { itemShape: frameShape(spec.format) };
const task = (
  TASKS[spec.task].reads === 'images' ? taskReading(spec.task, 'images') : taskReading(spec.task, 'frames')
).configure(setup);
const samples = videoSamples(task, spec.videos, spec.format, {
  batchSize: spec.batchSize,
  badInputs: spec.badInputs,
  frameCache: new FrameCache(spec.frameCacheBytes),
  onBadInput: (input, error) => send({ type: 'badInput', input, name: error.name, message: error.message }),
});

const streams = new Map<number, { valve: Valve; subscription: Subscription }>();
port.on('message', (message: ToWorker) => {
  if (message.type === 'start') {
    const valve = new Valve();
    const { id } = message;
    const entry = { valve, subscription: undefined as unknown as Subscription };
    streams.set(id, entry);
    entry.subscription = samples(message.epoch, valve, Rng.fromState(message.rngState))
      .pipe(bufferCount(spec.batchSize))
      .subscribe({
        next: (batch) => send({ type: 'samples', id, samples: batch }),
        complete: () => (streams.delete(id), send({ type: 'complete', id })),
        error: (error: Error) => (
          streams.delete(id),
          send({ type: 'error', id, name: error.name, message: error.message })
        ),
      });
  } else if (message.type === 'pause') streams.get(message.id)?.valve.close();
  else if (message.type === 'resume') streams.get(message.id)?.valve.open();
  else {
    streams.get(message.id)?.subscription.unsubscribe();
    streams.delete(message.id);
  }
});
