import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { OptionError } from '../core/errors.ts';
import {
  mergePartitions,
  processPartition,
  startManifest,
  type ProcessCorpusOptions,
  type ProcessCorpusResult,
} from './processCorpus.ts';
import type { TextSampleSummary } from './textTasks.ts';
import { retrying, type Broker } from './natsConnection.ts';

/** The work-queue stream of corpus jobs: each job is taken by one worker and removed once acknowledged. */
export const JOB_STREAM = 'TEMPO_CORPUS_JOBS';
/** The stream where workers report finished (or failed) jobs to the coordinator. */
export const DONE_STREAM = 'TEMPO_CORPUS_DONE';
/** The durable consumer every worker shares. */
export const WORKERS = 'tempo-corpus-workers';
const JOBS = 'tempo.corpus.jobs';
const DONE = 'tempo.corpus.done';

/** What a job carries: the run's options as given (paths as the coordinator's `cwd` sees them) and its partition. */
export interface CorpusJob {
  run: string;
  cwd: string;
  partition: number;
  partitions: number;
  options: JobOptions;
}

type JobOptions = Omit<ProcessCorpusOptions, 'onShard' | 'signal' | 'tallies' | 'partitions' | 'shard' | 'onSkip'>;

/** A worker's report on one job. */
interface JobReport {
  run: string;
  partition: number;
  worker: string;
  written?: number;
  reused?: number;
  bytes?: number;
  samples?: Record<string, TextSampleSummary>;
  error?: string;
}

/** Creates the job and report streams when missing (idempotent). */
export async function ensureCorpusStreams(broker: Broker): Promise<void> {
  await retrying(async () => {
    const names: string[] = [];
    for await (const name of broker.jsm.streams.names()) names.push(name);
    if (!names.includes(JOB_STREAM))
      await broker.jsm.streams.add({
        name: JOB_STREAM,
        subjects: [`${JOBS}.>`],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
      });
    if (!names.includes(DONE_STREAM))
      await broker.jsm.streams.add({
        name: DONE_STREAM,
        subjects: [`${DONE}.>`],
        storage: StorageType.File,
        max_age: nanos(7 * 24 * 3600 * 1000),
      });
  });
}

/** Options of {@link submitCorpusJobs}: a process-corpus run and how its progress is told. */
export interface SubmitOptions extends ProcessCorpusOptions {
  partitions: number;
  /** Called once per partition as its job is reported finished. */
  onPartition?: (partition: number, worker: string) => void;
}

/**
 * A `--queue` process-corpus run: checks the options, puts one job per partition on the work-queue stream, waits
 * until workers have reported every partition (a job whose worker died is redelivered to another after the
 * consumer's ack wait), then writes `manifest.json` from the partitions' manifests: the same bytes as
 * `processCorpus` with the same `partitions` on one machine. Workers must see `outDir` and the inputs at the same
 * paths (a shared folder).
 *
 * @throws Error naming the partition and worker when a worker reports a failed job.
 */
export async function submitCorpusJobs(broker: Broker, options: SubmitOptions): Promise<ProcessCorpusResult> {
  const { partitions } = options;
  if (!Number.isInteger(partitions) || partitions < 1)
    throw new OptionError('--partitions', partitions, 'a positive integer (one job per partition)');
  if (options.shard) throw new OptionError('--shard', options.shard, 'left out with --queue (jobs are partitions)');
  // Fails here, before any job is published, on a bad tokenizer, task or input option.
  await startManifest({ ...options, shard: { index: 0, count: partitions } });
  await ensureCorpusStreams(broker);
  const run = randomUUID();
  const { outDir, text, dialogues, dialogueFormat, tasks, tokenizer, seed, shardSize, taskConfig, onInvalid } = options;
  const jobOptions: JobOptions = {
    outDir,
    text,
    dialogues,
    dialogueFormat,
    tasks,
    tokenizer,
    seed,
    shardSize,
    taskConfig,
    onInvalid,
    cacheTokens: options.cacheTokens,
  };
  // Reports are read from the start of this run's subject, so none is missed whenever it arrives.
  const reports = await retrying(() =>
    broker.js.consumers.get(DONE_STREAM, {
      filter_subjects: `${DONE}.${run}`,
      deliver_policy: DeliverPolicy.All,
    }),
  );
  for (let p = 0; p < partitions; p++) {
    const job: CorpusJob = { run, cwd: process.cwd(), partition: p, partitions, options: jobOptions };
    await retrying(() => broker.js.publish(`${JOBS}.${run}`, JSON.stringify(job), { msgID: `${run}-${p}` }));
  }
  const done = new Map<number, JobReport>();
  const messages = await reports.consume();
  let failed: JobReport | undefined;
  for await (const m of messages) {
    const report = m.json<JobReport>();
    if (report.error !== undefined) {
      failed = report;
      break;
    }
    if (!done.has(report.partition)) {
      done.set(report.partition, report);
      options.onPartition?.(report.partition, report.worker);
    }
    if (done.size === partitions) break;
  }
  await messages.close();
  if (failed)
    throw new Error(
      `corpus job ${failed.partition} of ${partitions} failed on worker ${failed.worker}: ${failed.error}`,
    );
  const manifest = await mergePartitions(outDir, partitions);
  const result: ProcessCorpusResult = { manifest, written: 0, reused: 0, bytes: 0, samples: {} };
  for (const r of done.values()) {
    result.written += r.written ?? 0;
    result.reused += r.reused ?? 0;
    result.bytes += r.bytes ?? 0;
    for (const [task, s] of Object.entries(r.samples ?? {})) {
      const sum = (result.samples[task] ??= { emitted: 0 });
      for (const [k, v] of Object.entries(s))
        if (typeof v === 'number' && k !== 'baseline' && k !== 'mostFrequentId') sum[k] = ((sum[k] as number) ?? 0) + v;
    }
  }
  return result;
}

/** Options of {@link runCorpusWorker}. */
export interface WorkerOptions {
  /**
   * Seconds a job may go without a sign of life before the server gives it to another worker. A working worker
   * signals every third of it, so this is how long a dead worker's job waits. Default 60.
   */
  ackWaitSeconds?: number;
  /** Stops taking jobs (the current one finishes first). */
  signal?: AbortSignal;
  /** Stop after this many jobs (default: run until `signal`). */
  maxJobs?: number;
  /** One line per job taken and finished. */
  report?: (line: string) => void;
}

/**
 * A corpus worker: takes jobs from the shared durable consumer one at a time, runs the job's partition
 * ({@link processPartition}, which keeps shards an earlier worker of the same job finished), reports it and
 * acknowledges the job (a lost acknowledgement only means the job runs again and finds its shards written). While a job runs the worker tells the server it is working every third of the ack wait;
 * a worker that dies stops doing so, and the job goes to another worker after the ack wait. A job that fails
 * (bad input) is reported to its coordinator and acknowledged, not retried.
 *
 * @returns the number of jobs done.
 */
export async function runCorpusWorker(broker: Broker, options: WorkerOptions = {}): Promise<number> {
  const ackWaitSeconds = options.ackWaitSeconds ?? 60;
  if (!(ackWaitSeconds > 0)) throw new OptionError('--ack-wait', ackWaitSeconds, 'a positive number of seconds');
  const report = options.report ?? broker.report;
  const worker = `${hostname()}:${process.pid}`;
  await ensureCorpusStreams(broker);
  const config = {
    durable_name: WORKERS,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(ackWaitSeconds * 1000),
    max_deliver: -1,
    filter_subject: `${JOBS}.>`,
  };
  await retrying(async () => {
    try {
      await broker.jsm.consumers.info(JOB_STREAM, WORKERS);
      await broker.jsm.consumers.update(JOB_STREAM, WORKERS, { ack_wait: config.ack_wait });
    } catch (error) {
      if (!/not found/i.test((error as Error).message)) throw error;
      await broker.jsm.consumers.add(JOB_STREAM, config);
    }
  });
  const consumer = await retrying(() => broker.js.consumers.get(JOB_STREAM, WORKERS));
  let jobs = 0;
  while (!options.signal?.aborted && jobs < (options.maxJobs ?? Infinity)) {
    let m: JsMsg | null;
    try {
      m = await consumer.next({ expires: 2000 });
    } catch (error) {
      if (options.signal?.aborted) break;
      await new Promise((r) => setTimeout(r, 500));
      void error;
      continue;
    }
    if (!m) continue;
    await runJob(broker, m, worker, ackWaitSeconds, report);
    jobs++;
  }
  return jobs;
}

async function runJob(
  broker: Broker,
  m: JsMsg,
  worker: string,
  ackWaitSeconds: number,
  report: (line: string) => void,
): Promise<void> {
  const job = m.json<CorpusJob>();
  const tag = `job ${job.partition} of ${job.partitions} (run ${job.run.slice(0, 8)}, delivery ${m.info.deliveryCount})`;
  report(`worker: took ${tag}`);
  const alive = setInterval(() => m.working(), (ackWaitSeconds * 1000) / 3);
  let outcome: JobReport;
  try {
    if (job.cwd !== process.cwd()) process.chdir(job.cwd);
    const result = await processPartition(job.options, job.partition, job.partitions);
    outcome = {
      run: job.run,
      partition: job.partition,
      worker,
      written: result.written,
      reused: result.reused,
      bytes: result.bytes,
      samples: result.samples,
    };
  } catch (error) {
    outcome = { run: job.run, partition: job.partition, worker, error: (error as Error).message };
  } finally {
    clearInterval(alive);
  }
  await retrying(() => broker.js.publish(`${DONE}.${job.run}`, JSON.stringify(outcome)));
  // A failed job is reported and acknowledged: bad input fails the same way on any worker.
  await m.ackAck().catch(() => m.ack());
  if (outcome.error !== undefined) {
    report(`worker: ${tag} failed: ${outcome.error}`);
  } else {
    report(`worker: finished ${tag}: ${outcome.written} shard(s) written, ${outcome.reused} kept`);
  }
}
