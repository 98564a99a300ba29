import { parentPort, workerData } from 'node:worker_threads';
import { bufferCount, type Subscription } from 'rxjs';
import { Rng } from '../core/rng.ts';
import { Valve } from '../core/valve.ts';
import { FrameCache } from '../pipeline/frameCache.ts';
import { frameShape } from '../pipeline/frameFormat.ts';
import { TASKS, taskReading } from '../tasks/registry.ts';
import type { Sample } from '../pipeline/sample.ts';
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

/** A stream's batches wait here while it has no credit; its valve (what the sampler obeys) is closed meanwhile. */
const streams = new Map<
  number,
  { valve: Valve; subscription: Subscription; credits: number; held: Sample[][]; complete: boolean }
>();
/** Sends what a stream's credits allow, then its end once every batch is out. */
const flush = (id: number): void => {
  const stream = streams.get(id);
  if (!stream) return;
  while (stream.credits > 0 && stream.held.length > 0) {
    stream.credits--;
    send({ type: 'samples', id, samples: stream.held.shift()! });
  }
  if (stream.held.length === 0 && stream.complete) {
    streams.delete(id);
    send({ type: 'complete', id });
  } else if (stream.credits > 0) stream.valve.open();
  else stream.valve.close();
};
port.on('message', (message: ToWorker) => {
  if (message.type === 'start') {
    const { id } = message;
    const entry = {
      valve: new Valve(),
      subscription: undefined as unknown as Subscription,
      credits: message.credits,
      held: [] as Sample[][],
      complete: false,
    };
    streams.set(id, entry);
    entry.subscription = samples(message.epoch, entry.valve, Rng.fromState(message.rngState))
      .pipe(bufferCount(spec.batchSize))
      .subscribe({
        next: (batch) => {
          entry.held.push(batch);
          flush(id);
        },
        complete: () => {
          entry.complete = true;
          flush(id);
        },
        // An error goes at once: the samples held would only be dropped by the trainer.
        error: (error: Error) => (
          streams.delete(id),
          send({ type: 'error', id, name: error.name, message: error.message })
        ),
      });
  } else if (message.type === 'credit') {
    const stream = streams.get(message.id);
    if (stream) {
      stream.credits += message.batches;
      flush(message.id);
    }
  } else {
    streams.get(message.id)?.subscription.unsubscribe();
    streams.delete(message.id);
  }
});
