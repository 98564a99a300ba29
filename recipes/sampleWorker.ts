import { Worker } from 'node:worker_threads';
import { Observable } from 'rxjs';
import * as errors from '../core/errors.ts';
import type { Rng } from '../core/rng.ts';
import type { Valve } from '../core/valve.ts';
import type { FrameFormat } from '../pipeline/frameFormat.ts';
import type { Sample } from '../pipeline/sample.ts';
import type { TaskName } from '../tasks/registry.ts';

/** What a sample worker needs to rebuild a task's samples over video files on its own thread. */
export interface SampleWorkerSpec {
  /** A registry task that reads frames or images. */
  task: TaskName;
  videos: readonly string[];
  format: FrameFormat;
  batchSize: number;
  badInputs?: 'skip' | 'fail';
  /** The worker's own frame cache, in bytes. */
  frameCacheBytes: number;
}

/** Messages from the worker, each tagged with the epoch stream (`id`) it belongs to. */
export type FromWorker =
  | { type: 'samples'; id: number; samples: Sample[] }
  | { type: 'complete'; id: number }
  | { type: 'error'; id: number; name: string; message: string }
  | { type: 'badInput'; input: string; name: string; message: string };

/** Messages to the worker. */
export type ToWorker =
  | { type: 'start'; id: number; epoch: number; rngState: number; credits: number }
  | { type: 'credit'; id: number; batches: number }
  | { type: 'stop'; id: number };

/**
 * Messages of samples a worker may have sent that the training thread has not yet taken in: the worker sends one
 * for each credit, and the training thread gives a credit back for each message it takes while its valve is open.
 * So at most this many messages wait in the port, however fast the worker is (a pause message came too late when
 * the worker made a whole epoch before the training thread read the first).
 */
export const SAMPLE_CREDITS = 4;

/**
 * A task's video samples made on a worker thread, so decoding (ffmpeg's pipes), frame caching, sampling and
 * augmentation leave the training thread, which then only collates and trains: the second core of a two-core
 * machine does the data work. Same samples, in the same order, as `videoSamples` on the training thread (the worker
 * runs it, seeded by the state of the trainer's generator), so checkpoints and `--resume` are unchanged.
 *
 * Backpressure crosses the thread by credits: the worker sends a message of `batchSize` samples only for a credit,
 * and the trainer gives a credit back for each message it takes while its valve is open, so at most
 * {@link SAMPLE_CREDITS} messages are on their way beyond the trainer's high-water mark. Errors come back as the
 * same error classes (a task that cannot sample its inputs is still a `TaskSamplesError`).
 *
 * @example
 * const worker = new SampleWorker({ task: 'order', videos, format, batchSize: 32, frameCacheBytes: 256 << 20 });
 * train({ ..., tasks: [{ task, samples: worker.samples }] }).finally(() => worker.close());
 */
export class SampleWorker {
  readonly #worker: Worker;
  readonly #streams = new Map<number, (message: FromWorker) => void>();
  #nextId = 0;
  #closing = false;

  constructor(spec: SampleWorkerSpec, onBadInput?: (input: string, error: errors.VideoError) => void) {
    // A plain JS entry registers tsx in the worker: module hooks registered on this thread do not reach it.
    this.#worker = new Worker(new URL('./sampleWorkerEntry.js', import.meta.url), { workerData: spec });
    this.#worker.unref();
    this.#worker.on('message', (message: FromWorker) => {
      if (message.type === 'badInput') {
        onBadInput?.(message.input, rebuildError(message) as errors.VideoError);
        return;
      }
      this.#streams.get(message.id)?.(message);
    });
    this.#worker.on('exit', (code) => {
      if (this.#closing) return;
      const message = `the sample worker stopped (exit code ${code}) while a run was reading from it`;
      for (const deliver of this.#streams.values()) deliver({ type: 'error', id: -1, name: 'TempoError', message });
    });
    this.#worker.on('error', (error) => {
      for (const deliver of this.#streams.values())
        deliver({ type: 'error', id: -1, name: error.name, message: error.message });
    });
  }

  /** `TrainTask.samples`: epoch `epoch` of the task's samples, made on the worker. */
  readonly samples = (epoch: number, valve: Valve, rng: Rng): Observable<Sample> =>
    new Observable<Sample>((subscriber) => {
      const id = this.#nextId++;
      // Credits owed to the worker for messages taken while the valve was closed, given back when it opens.
      let owed = 0;
      let cancelWake = (): void => {};
      const post = (message: ToWorker): void => this.#worker.postMessage(message);
      this.#streams.set(id, (message) => {
        if (message.type === 'samples') {
          for (const sample of message.samples) subscriber.next(sample);
          if (valve.isOpen) post({ type: 'credit', id, batches: 1 });
          else if (owed++ === 0) {
            cancelWake = valve.onOpen(() => {
              post({ type: 'credit', id, batches: owed });
              owed = 0;
            });
          }
        } else if (message.type === 'complete') subscriber.complete();
        else if (message.type === 'error') subscriber.error(rebuildError(message));
      });
      post({ type: 'start', id, epoch, rngState: rng.state, credits: SAMPLE_CREDITS });
      return () => {
        cancelWake();
        this.#streams.delete(id);
        post({ type: 'stop', id });
      };
    });

  /** Ends the worker (its ffmpeg children with it). */
  async close(): Promise<void> {
    this.#closing = true;
    await this.#worker.terminate();
  }
}

/** An error sent across the thread, as its own class again where it is one of ours (`instanceof` still works). */
export function rebuildError({ name, message }: { name: string; message: string }): Error {
  const Class = (errors as Record<string, unknown>)[name];
  const error = new Error(message);
  error.name = name;
  if (typeof Class === 'function' && Class.prototype instanceof Error)
    Object.setPrototypeOf(error, Class.prototype as object);
  return error;
}
