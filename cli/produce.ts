import { Command } from 'commander';
import { hostname } from 'node:os';
import { expandInputs } from '../pipeline/inputs.ts';
import { FrameCache } from '../pipeline/frameCache.ts';
import { frameShape } from '../pipeline/frameFormat.ts';
import { connectBroker } from '../recipes/natsConnection.ts';
import { produceSamples } from '../recipes/sampleStream.ts';
import { videoSamples } from '../recipes/videoSamples.ts';
import { parseTaskList, taskReading, tasksReading } from '../tasks/registry.ts';
import { stopSignal } from './backend.ts';
import { addNatsOptions, natsOptions, SCALE_OUT_HELP, type NatsFlags } from './natsOptions.ts';
import { nonNegativeInt, positiveInt, positiveNumber } from './options.ts';

interface ProduceFlags extends NatsFlags {
  video: string[];
  tasks: string;
  to: string;
  stream: string;
  producer: string;
  state?: string;
  batch: number;
  limit?: number;
  maxBytes: number;
  frameCache: number;
  width: number;
  height: number;
  fps?: number;
  gray?: boolean;
}

/** `tempo-ssl produce`: decode and sample videos, publishing the samples to a NATS JetStream stream. */
export function produceCommand(): Command {
  const command = new Command('produce')
    .description(
      'decode videos and sample frame tasks (the samplers of pretrain, seeded from --producer), publishing sample batches to a bounded NATS JetStream stream that pretrain --from consumes; waits while the stream is full',
    )
    .requiredOption('--video <inputs...>', 'video files, folders or globs')
    .option('--tasks <list>', `frame tasks (${tasksReading('frames').join(', ')})`, 'order')
    .requiredOption('--to <URL>', 'nats://host:4222 of the broker')
    .requiredOption('--stream <NAME>', 'JetStream stream name (created bounded by --max-bytes when missing)')
    .option('--producer <ID>', 'producer id: seeds its samplers and names its sample ids', hostname())
    .option('--state <FILE>', 'save the position here after each message; a restarted producer resumes from it')
    .option('--batch <B>', 'samples per message', positiveInt, 32)
    .option('--limit <N>', 'samples per task to publish in all (default: until stopped)', positiveInt)
    .option('--max-bytes <MB>', 'bound of the stream when this producer creates it', positiveInt, 256)
    .option('--frame-cache <MB>', 'decoded frames kept in memory for later epochs', nonNegativeInt, 256)
    .option('--width <W>', 'frame width (must match the trainer)', positiveInt, 64)
    .option('--height <H>', 'frame height (must match the trainer)', positiveInt, 64)
    .option('--fps <F>', 'resample videos to this frame rate', positiveNumber)
    .option('--gray', 'gray frames');
  return addNatsOptions(command)
    .addHelpText(
      'after',
      `
Any number of producers (distinct --producer ids) on any machines may feed one stream and one trainer.
${SCALE_OUT_HELP}`,
    )
    .action(async (flags: ProduceFlags) => {
      const tasks = parseTaskList(flags.tasks, tasksReading('frames'));
      const videos = (await expandInputs(flags.video)).map((s) => s.input);
      const format = { width: flags.width, height: flags.height, fps: flags.fps, gray: flags.gray };
      const setup = { itemShape: frameShape(format) };
      const frameCache = new FrameCache(flags.frameCache * 2 ** 20);
      const broker = await connectBroker(natsOptions(flags.to, flags, `tempo-ssl produce ${flags.producer}`));
      try {
        const done = await produceSamples(broker, {
          stream: flags.stream,
          producer: flags.producer,
          tasks: tasks.map(({ name }) => ({
            name,
            samples: videoSamples(taskReading(name, 'frames').configure(setup), videos, format, {
              batchSize: flags.batch,
              frameCache,
            }),
          })),
          batch: flags.batch,
          limit: flags.limit,
          maxBytes: flags.maxBytes * 2 ** 20,
          stateFile: flags.state,
          signal: stopSignal(),
          report: (line) => console.error(line),
        });
        console.error(
          `produce: published ${Object.entries(done)
            .map(([k, v]) => `${v} ${k}`)
            .join(', ')} sample(s) to ${flags.stream}`,
        );
      } finally {
        await broker.close();
      }
    });
}
