import { existsSync } from 'node:fs';
import { appendFile, readFile } from 'node:fs/promises';
import { AckPolicy, DiscardPolicy, RetentionPolicy, StorageType, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { EMPTY, Observable } from 'rxjs';
import { writeJson } from '../core/atomicWrite.ts';
import { DataFormatError, OptionError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';
import { Valve } from '../core/valve.ts';
import type { Sample } from '../pipeline/sample.ts';
import type { TrainHook, TrainTask } from '../training/trainer.ts';
import { retrying, type Broker } from './natsConnection.ts';

/** The subject a stream's samples of `task` are published on. */
export function sampleSubject(stream: string, task: string): string {
  return `tempo.samples.${stream}.${task}`;
}

/** Checks a stream name (JetStream allows letters, digits, - and _). */
export function checkStreamName(stream: string): void {
  if (!/^[A-Za-z0-9_-]+$/.test(stream))
    throw new OptionError('--stream', stream, 'a name of letters, digits, - and _ (a JetStream stream)');
}

/**
 * Creates the sample stream when missing: a work queue (a message is removed once the trainer acknowledges it),
 * bounded to `maxBytes`, refusing new messages when full (so producers wait) rather than dropping old ones.
 */
export async function ensureSampleStream(broker: Broker, stream: string, maxBytes: number): Promise<void> {
  checkStreamName(stream);
  await retrying(async () => {
    try {
      await broker.jsm.streams.info(stream);
    } catch (error) {
      if (!/not found/i.test((error as Error).message)) throw error;
      await broker.jsm.streams.add({
        name: stream,
        subjects: [`tempo.samples.${stream}.>`],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        discard: DiscardPolicy.New,
        max_bytes: maxBytes,
        duplicate_window: nanos(120_000),
      });
    }
  });
}

/**
 * One message of samples: a uint32 header length, the JSON header (producer, first sample's sequence number,
 * count, the float lengths of each input and the label), then the float32 values sample by sample.
 */
export function encodeBatch(samples: readonly Sample[], producer: string, seq: number): Uint8Array {
  const first = samples[0]!;
  const header = {
    producer,
    seq,
    n: samples.length,
    inputs: first.inputs.map((a) => a.length),
    label: first.label.length,
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const per = header.inputs.reduce((a, b) => a + b, header.label);
  const floatsAt = Math.ceil((4 + json.length) / 4) * 4;
  const bytes = new Uint8Array(floatsAt + per * samples.length * 4);
  new DataView(bytes.buffer).setUint32(0, json.length, true);
  bytes.set(json, 4);
  const floats = new Float32Array(bytes.buffer, floatsAt);
  let at = 0;
  for (const s of samples) {
    for (const a of s.inputs) floats.set(a, (at += a.length) - a.length);
    floats.set(s.label, (at += s.label.length) - s.label.length);
  }
  return bytes;
}

/** Reads {@link encodeBatch}'s bytes; each sample's `source` is its id `producer:seq`. */
export function decodeBatch(bytes: Uint8Array): Sample[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(0, true);
  let header: { producer: string; seq: number; n: number; inputs: number[]; label: number };
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + length))) as typeof header;
  } catch (cause) {
    throw new DataFormatError('sample message', `not a tempo-ssl sample batch (${(cause as Error).message})`);
  }
  const floatsAt = Math.ceil((4 + length) / 4) * 4;
  const copy = bytes.slice(floatsAt);
  const floats = new Float32Array(copy.buffer, 0, copy.byteLength / 4);
  const out: Sample[] = [];
  let at = 0;
  for (let i = 0; i < header.n; i++) {
    const inputs = header.inputs.map((w) => floats.slice(at, (at += w)));
    const label = floats.slice(at, (at += header.label));
    out.push({ inputs, label, source: `${header.producer}:${header.seq + i}` });
  }
  return out;
}

/** A producer's saved position: samples published (and acknowledged by the server) per task. */
interface ProducerState {
  producer: string;
  published: Record<string, number>;
}

/** Options of {@link produceSamples}. */
export interface ProduceOptions {
  stream: string;
  /** Names this producer; its samplers' seeds derive from it, and its sample ids are `producer:seq`. */
  producer: string;
  /** Each task's samples for an epoch (as `TrainTask.samples`): the same samplers a local run uses. */
  tasks: Array<{ name: string; samples: TrainTask['samples'] }>;
  /** Samples per message (fewer when they would pass the server's max_payload). Default 32. */
  batch?: number;
  /** Samples per task to publish in all (default: no end). */
  limit?: number;
  /** Stream bound in bytes when this producer creates it. Default 256 MB. */
  maxBytes?: number;
  /** File of the producer's position, saved after each acknowledged message; a restarted producer resumes from it. */
  stateFile?: string;
  signal?: AbortSignal;
  /** One line when the stream is full (the producer waits) and when it drains again. */
  report?: (line: string) => void;
}

/** Derives the seed of a producer's sampler from its id (FNV-1a), the task index and the epoch. */
export function producerSeed(producer: string, task: number, epoch: number): number {
  let h = 0x811c9dc5;
  for (const c of producer) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return (h ^ Math.imul(task + 1, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0;
}

/**
 * Publishes each task's samples to the stream, `batch` samples a message, with ids `producer:seq`. Each message
 * carries a message id (`producer-task-seq`), so a producer killed between publishing and saving its position
 * republishes it harmlessly (the server drops duplicates within two minutes). It waits (backoff) while the
 * stream is full or the broker is away. Restarted with the same `stateFile`, it regenerates its deterministic
 * samples and skips those already published.
 *
 * @returns samples published per task by this call.
 */
export async function produceSamples(broker: Broker, options: ProduceOptions): Promise<Record<string, number>> {
  const batch = options.batch ?? 32;
  const report = options.report ?? broker.report;
  await ensureSampleStream(broker, options.stream, options.maxBytes ?? 256 * 2 ** 20);
  const state: ProducerState =
    options.stateFile && existsSync(options.stateFile)
      ? (JSON.parse(await readFile(options.stateFile, 'utf8')) as ProducerState)
      : { producer: options.producer, published: {} };
  if (state.producer !== options.producer)
    throw new OptionError(
      '--state',
      options.stateFile,
      `the state file of producer ${options.producer}, not ${state.producer}`,
    );
  const limit = options.limit ?? Infinity;
  const done: Record<string, number> = {};
  // Tasks are published in turns of one message each, so every task's samples keep flowing.
  const iterators = options.tasks.map((task, k) => ({ task, it: taskBatches(task, k, options.producer, batch) }));
  for (const { task } of iterators) done[task.name] = 0;
  let active = iterators.filter(({ task }) => (state.published[task.name] ?? 0) < limit);
  while (active.length > 0 && !options.signal?.aborted) {
    for (const entry of [...active]) {
      const name = entry.task.name;
      const seq = state.published[name] ?? 0;
      const next = await entry.it.next(seq);
      if (!next || seq >= limit) {
        active = active.filter((e) => e !== entry);
        continue;
      }
      const samples = next.slice(0, Math.max(0, limit - seq));
      // A message stays under the server's max_payload (1 MB by default): big samples go fewer to a message.
      const perSample = samples[0]!.inputs.reduce((n, a) => n + a.length, samples[0]!.label.length) * 4;
      const fit = Math.max(1, Math.floor((broker.nc.info!.max_payload - 4096) / perSample));
      for (let at = 0; at < samples.length; at += fit) {
        const part = samples.slice(at, at + fit);
        const bytes = encodeBatch(part, options.producer, seq + at);
        await publishWaiting(
          broker,
          sampleSubject(options.stream, name),
          bytes,
          `${options.producer}-${name}-${seq + at}`,
          report,
        );
      }
      state.published[name] = seq + samples.length;
      done[name]! += samples.length;
      if (options.stateFile) await writeJson(options.stateFile, state);
    }
  }
  return done;
}

/**
 * A task's samples in batches, epoch after epoch (seeded from the producer id), from any sequence number: the
 * first call's `from` samples are drawn and dropped, which is how a restarted producer resumes.
 */
function taskBatches(
  task: { name: string; samples: TrainTask['samples'] },
  k: number,
  producer: string,
  batch: number,
): { next(from: number): Promise<Sample[] | undefined> } {
  let epoch = 0;
  let position = 0;
  let emptyEpochs = 0;
  const pending: Sample[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  const valve = new Valve();
  let subscribed = false;
  const subscribe = (): void => {
    subscribed = true;
    let got = 0;
    const rng = new Rng(producerSeed(producer, k, epoch));
    task.samples(epoch, valve, rng).subscribe({
      next: (s) => {
        got++;
        pending.push(s);
        if (pending.length >= batch * 4) valve.close();
        wake?.();
      },
      error: (e: unknown) => {
        failure = e;
        wake?.();
      },
      complete: () => {
        emptyEpochs = got === 0 ? emptyEpochs + 1 : 0;
        if (emptyEpochs >= 2) ended = true;
        epoch++;
        subscribed = false;
        wake?.();
      },
    });
  };
  let failure: unknown;
  const take = async (): Promise<Sample | undefined> => {
    for (;;) {
      if (failure !== undefined) throw failure as Error;
      if (pending.length > 0) {
        const s = pending.shift()!;
        if (pending.length < batch) valve.open();
        position++;
        return s;
      }
      if (ended) return undefined;
      if (!subscribed) subscribe();
      else await new Promise<void>((r) => (wake = r));
    }
  };
  return {
    async next(from) {
      while (position < from) if (!(await take())) return undefined;
      const out: Sample[] = [];
      while (out.length < batch) {
        const s = await take();
        if (!s) break;
        out.push(s);
      }
      return out.length > 0 ? out : undefined;
    },
  };
}

async function publishWaiting(
  broker: Broker,
  subject: string,
  bytes: Uint8Array,
  msgID: string,
  report: (line: string) => void,
): Promise<void> {
  let full = false;
  let delay = 100;
  for (;;) {
    try {
      await broker.js.publish(subject, bytes, { msgID, timeout: 10_000 });
      if (full) report(`produce: ${subject} has room again`);
      return;
    } catch (error) {
      const message = (error as Error).message;
      const isFull = /maximum bytes|maximum messages|resource limits|10077|10047/i.test(message);
      if (isFull && !full) report(`produce: the stream is full; waiting for the trainer`);
      full ||= isFull;
      if (!isFull && !/timeout|no responders|503|disconnect|reconnect|connection|closed/i.test(message)) throw error;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2000);
    }
  }
}

/** Options of {@link brokerSamples}. */
export interface ConsumeOptions {
  stream: string;
  /** Samples per task per step: the trainer's `batchSize`. */
  batchSize: number;
  /** The step the trainer starts at (the checkpoint's on resume). */
  startStep: number;
  /** Seconds before the server redelivers a message the trainer holds without a sign of life. Default 60. */
  ackWaitSeconds?: number;
  /** End the data (the run stops, checkpointing) after this many seconds without a message. Default: never. */
  idleExitSeconds?: number;
  /** One line when the trainer starves while holding messages (a stream too small for a checkpoint interval). */
  report?: (line: string) => void;
  /** Appends `train <step> <id>` for each sample a step trained and `ack <step> <id>` as it is acknowledged. */
  sampleLog?: string;
}

/** What {@link brokerSamples} gives the trainer: each task's samples, and the hook that acknowledges them. */
export interface BrokerSamples {
  samples(task: string): TrainTask['samples'];
  hook: TrainHook;
  /** Stops pulling and heartbeats. */
  close(): void;
}

interface Held {
  msg: JsMsg;
  /** Index (in this process's sample order of its task) after the message's last sample. */
  end: number;
  ids: string[];
}

/**
 * The trainer's side: one durable pull consumer per task (`tempo-trainer-<task>`), whose messages feed the task's
 * samples in arrival order. A message is acknowledged only once a checkpoint holds the step that trained its last
 * sample (the trainer's `onCheckpoint` hook); until then the consumer signals the server every third of the ack
 * wait that it still works on it. A trainer killed after a checkpoint leaves later messages unacknowledged: the
 * server gives them to the resumed trainer after the ack wait. Delivery is at least once: samples of a message
 * that a killed run had partly trained are trained again.
 */
export async function brokerSamples(
  broker: Broker,
  tasks: readonly string[],
  options: ConsumeOptions,
): Promise<BrokerSamples> {
  checkStreamName(options.stream);
  const ackWait = options.ackWaitSeconds ?? 60;
  if (!(ackWait > 0)) throw new OptionError('--ack-wait', ackWait, 'a positive number of seconds');
  // Created here too (with the default bound) when the trainer starts before any producer.
  await ensureSampleStream(broker, options.stream, 256 * 2 ** 20);
  const states = new Map<string, { held: Held[]; emitted: number; acked: Set<number> }>();
  const stopped = { value: false };
  const timers: NodeJS.Timeout[] = [];
  const log = async (lines: string[]): Promise<void> => {
    if (options.sampleLog && lines.length > 0) await appendFile(options.sampleLog, lines.join('\n') + '\n');
  };
  for (const task of tasks) {
    const durable = `tempo-trainer-${task}`;
    await retrying(async () => {
      try {
        await broker.jsm.consumers.info(options.stream, durable);
        await broker.jsm.consumers.update(options.stream, durable, { ack_wait: nanos(ackWait * 1000) });
      } catch (error) {
        if (!/not found/i.test((error as Error).message)) throw error;
        await broker.jsm.consumers.add(options.stream, {
          durable_name: durable,
          ack_policy: AckPolicy.Explicit,
          ack_wait: nanos(ackWait * 1000),
          max_deliver: -1,
          max_ack_pending: 100_000,
          filter_subject: sampleSubject(options.stream, task),
        });
      }
    });
    const state = { held: [] as Held[], emitted: 0, acked: new Set<number>() };
    states.set(task, state);
    timers.push(setInterval(() => state.held.forEach((h) => h.msg.working()), (ackWait * 1000) / 3));
  }
  const source = (task: string): TrainTask['samples'] => {
    const state = states.get(task)!;
    return (epoch: number, valve: Valve) => {
      if (epoch > 0) return EMPTY;
      return new Observable<Sample>((subscriber) => {
        let closed = false;
        void (async () => {
          const consumer = await retrying(() => broker.js.consumers.get(options.stream, `tempo-trainer-${task}`));
          let idleSince = Date.now();
          let warned = false;
          while (!closed && !stopped.value) {
            if (!valve.isOpen) {
              await new Promise<void>((r) => valve.onOpen(r));
              continue;
            }
            let msg: JsMsg | null = null;
            try {
              msg = await consumer.next({ expires: 1000 });
            } catch {
              await new Promise((r) => setTimeout(r, 250));
            }
            if (!msg) {
              const idle = Date.now() - idleSince;
              if (options.idleExitSeconds !== undefined && idle > options.idleExitSeconds * 1000) break;
              if (idle > 10_000 && state.held.length > 0 && !warned) {
                warned = true;
                options.report?.(
                  `pretrain --from: no sample for ${(idle / 1000).toFixed(0)} s while ${state.held.length} message(s) wait for the next checkpoint; if the producers say the stream is full, give the stream more --max-bytes or lower --checkpoint-every`,
                );
              }
              continue;
            }
            idleSince = Date.now();
            // A message redelivered to this same trainer (its heartbeat came late while a step ran): keep the
            // newer handle, never emit its samples twice; one already acknowledged is acknowledged again.
            const seq = msg.seq;
            const same = state.held.find((h) => h.msg.seq === seq);
            if (same) {
              same.msg = msg;
              continue;
            }
            if (state.acked.has(seq)) {
              msg.ack();
              continue;
            }
            const samples = decodeBatch(msg.data);
            state.emitted += samples.length;
            state.held.push({ msg, end: state.emitted, ids: samples.map((s) => s.source!) });
            for (const s of samples) if (!closed) subscriber.next(s);
          }
          if (!closed) subscriber.complete();
        })().catch((error: unknown) => subscriber.error(error));
        return () => {
          closed = true;
        };
      });
    };
  };
  const hook: TrainHook = {
    onStep: async ({ step }) => {
      if (!options.sampleLog) return;
      const lines: string[] = [];
      const from = (step - options.startStep - 1) * options.batchSize;
      for (const state of states.values()) {
        for (const h of state.held) {
          const start = h.end - h.ids.length;
          h.ids.forEach((id, i) => {
            if (start + i >= from && start + i < from + options.batchSize) lines.push(`train ${step} ${id}`);
          });
        }
      }
      await log(lines);
    },
    onCheckpoint: async (step) => {
      const trained = (step - options.startStep) * options.batchSize;
      const lines: string[] = [];
      for (const state of states.values()) {
        const ready = state.held.filter((h) => h.end <= trained);
        for (const h of ready) {
          await retrying(() => h.msg.ackAck());
          state.acked.add(h.msg.seq);
          for (const id of h.ids) lines.push(`ack ${step} ${id}`);
        }
        state.held = state.held.filter((h) => h.end > trained);
      }
      await log(lines);
    },
  };
  return {
    samples: source,
    hook,
    close: () => {
      stopped.value = true;
      timers.forEach(clearInterval);
    },
  };
}
