import { Command } from 'commander';
import { connectBroker } from '../recipes/natsConnection.ts';
import { runCorpusWorker } from '../recipes/corpusJobs.ts';
import { addNatsOptions, natsOptions, SCALE_OUT_HELP, type NatsFlags } from './natsOptions.ts';
import { positiveInt, positiveNumber } from './options.ts';

interface WorkerFlags extends NatsFlags {
  queue: string;
  ackWait: number;
  maxJobs?: number;
}

/** `tempo-ssl worker`: take process-corpus jobs from a NATS JetStream work queue until stopped. */
export function workerCommand(): Command {
  const command = new Command('worker')
    .description(
      'take process-corpus --queue jobs (one input partition each) from NATS JetStream, write their shards into the shared output folder, acknowledge; run any number, on any machine that sees the same paths',
    )
    .requiredOption('--queue <URL>', 'nats://host:4222 of the broker process-corpus --queue uses')
    .option(
      '--ack-wait <S>',
      'seconds after which the job of a worker that died (no sign of life) goes to another worker',
      positiveNumber,
      60,
    )
    .option('--max-jobs <N>', 'exit after this many jobs (default: until SIGINT/SIGTERM)', positiveInt);
  return addNatsOptions(command)
    .addHelpText(
      'after',
      `
A job is acknowledged only after its shards and partition manifest are written; a killed worker's job is
redelivered after --ack-wait and the next worker keeps the shards already finished (checked by hash).
${SCALE_OUT_HELP}`,
    )
    .action(async (flags: WorkerFlags) => {
      const broker = await connectBroker(natsOptions(flags.queue, flags, 'tempo-ssl worker'));
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const jobs = await runCorpusWorker(broker, {
          ackWaitSeconds: flags.ackWait,
          signal: stop.signal,
          maxJobs: flags.maxJobs,
          report: (line) => console.error(line),
        });
        console.error(`worker: ${jobs} job(s) done`);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await broker.close();
      }
    });
}
