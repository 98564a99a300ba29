import type * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { concat, from } from 'rxjs';
import { OptionError } from '../core/errors.ts';
import { frameShape, type FrameFormat } from '../pipeline/frameFormat.ts';
import type { FrameEncoderOptions } from '../models/frameEncoder.ts';
import type { Sample } from '../pipeline/sample.ts';
import { TASKS, taskReading, tasksReading, type TaskChoice } from '../tasks/registry.ts';
import type { CheckpointState } from '../training/checkpoint.ts';
import { train, type RunOptions, type TrainResult } from '../training/trainer.ts';
import type { Broker } from './natsConnection.ts';
import { runEncoderOptions, startRun, type RunInfo } from './pretrainVideo.ts';
import { finishRunFolder, prepareRunFolder } from './runFolder.ts';
import { brokerSamples, type ConsumeOptions } from './sampleStream.ts';

/** Options of {@link pretrainFromBroker}. */
export interface BrokerPretrainOptions extends RunOptions {
  broker: Broker;
  stream: string;
  /** Frame tasks whose samples producers publish (`tempo-ssl produce --tasks`). */
  tasks: TaskChoice[];
  /** The producers' frame format: it fixes the encoder's input shape. */
  format: FrameFormat;
  encoder?: Omit<FrameEncoderOptions, 'inputShape'>;
  ackWaitSeconds?: number;
  idleExitSeconds?: number;
  sampleLog?: ConsumeOptions['sampleLog'];
  force?: boolean;
}

/**
 * Pretrains the frame encoder from samples producers publish to a JetStream stream (see `brokerSamples` for the
 * delivery guarantee): the same trainer, tasks and run folder as a local video run. The trainer is one process;
 * only the decoding and sampling scale out.
 */
export async function pretrainFromBroker(
  options: BrokerPretrainOptions,
): Promise<TrainResult & { encoder: tf.LayersModel }> {
  const frameTasks = tasksReading('frames', 'images');
  const other = options.tasks.filter((t) => !frameTasks.includes(t.name)).map((t) => t.name);
  if (other.length > 0)
    throw new OptionError('--tasks', other.join(','), `tasks that read video frames: ${frameTasks.join(', ')}`);
  const setup = { itemShape: frameShape(options.format) };
  const configured = options.tasks.map(({ name, weight }) => ({
    name,
    weight,
    task: (TASKS[name].reads === 'images' ? taskReading(name, 'images') : taskReading(name, 'frames')).configure(setup),
  }));
  const folder = options.outDir ? await prepareRunFolder(options.outDir, options) : undefined;
  const info: RunInfo = {
    format: options.format,
    encoder: runEncoderOptions(options),
    tasks: options.tasks,
    videos: [],
  };
  const encoder = await startRun(info, options);
  const state = options.resume && options.outDir ? await checkpointState(options.outDir) : undefined;
  const source = await brokerSamples(
    options.broker,
    configured.map((c) => c.name),
    {
      stream: options.stream,
      batchSize: options.batchSize,
      startStep: state?.step ?? 0,
      ackWaitSeconds: options.ackWaitSeconds,
      idleExitSeconds: options.idleExitSeconds,
      sampleLog: options.sampleLog,
      report: options.broker.report,
    },
  );
  try {
    const result = await train({
      ...options,
      encoder,
      itemShape: frameShape(options.format),
      hooks: [...(options.hooks ?? []), source.hook],
      tasks: configured.map(({ name, weight, task }) => {
        // The trainer skips the batches its checkpoint had taken; broker samples are not replayed, so it passes
        // over as many placeholders instead (the unacknowledged samples come back from the server).
        const skip = (state?.positions[name]?.index ?? 0) * options.batchSize;
        const placeholder: Sample = { inputs: [], label: new Float32Array(0) };
        const samples = source.samples(name);
        return {
          task,
          weight,
          samples: (epoch, valve, rng) =>
            epoch === 0 && skip > 0
              ? concat(from(Array.from({ length: skip }, () => placeholder)), samples(epoch, valve, rng))
              : samples(epoch, valve, rng),
        };
      }),
    });
    await finishRunFolder(folder, result, [options.stream], 'samples');
    return { ...result, encoder };
  } finally {
    source.close();
  }
}

async function checkpointState(outDir: string): Promise<CheckpointState | undefined> {
  const path = join(outDir, 'checkpoint', 'state.json');
  return existsSync(path) ? (JSON.parse(await readFile(path, 'utf8')) as CheckpointState) : undefined;
}
