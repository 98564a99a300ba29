import { Valve } from '../core/valve.ts';
import { Rng } from '../core/rng.ts';
import { DataFormatError, OptionError, StoppedError } from '../core/errors.ts';
import { fsyncDir, tempNameFor, writeJson } from '../core/atomicWrite.ts';
import { lastValueFrom, Observable, tap } from 'rxjs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import type { TaskName } from '../tasks/registry.ts';
import { loadTokenizer } from '../text/tokenizers/loadTokenizer.ts';
import type { Tokenizer } from '../text/tokenizers/Tokenizer.ts';
import type { TextSourceOptions } from '../text/sources.ts';
import type { TokenizedSentence } from '../text/tokenizedSentence.ts';
import { tokenizedSentences, type TokenizedSentencesOptions } from '../text/tokenizedSentences.ts';
import {
  manifestNames,
  MANIFEST_VERSION,
  readManifestFile,
  ShardBuilder,
  shardCapacity,
  type SampleShapes,
  type ShardEntry,
  type ShardManifest,
} from './shards.ts';
import {
  textTaskSamples,
  buildTextTask,
  TEXT_TASKS,
  checkSources,
  needTokenCounts,
  TextSampleTallies,
  type TextSampleSummary,
  type TextTask,
} from './textTasks.ts';
import { resolveTextTaskConfig } from '../tasks/text/textTaskConfig.ts';
import type { TextTaskConfig } from '../tasks/text/textTaskConfig.ts';
import { readFile, mkdir, copyFile, unlink, readdir, rename } from 'node:fs/promises';
import { sha256, ShardWriter } from './shardWriter.ts';
import { existsSync } from 'node:fs';
import type { Sample } from '../pipeline/sample.ts';
import { skipgramDrawsOf, type SkipgramDraws } from '../tasks/text/skipgram.ts';
import { word2vecLabel } from '../tasks/text/word2vec.ts';

/** Options of {@link processCorpus}. */
export interface ProcessCorpusOptions extends TextSourceOptions {
  /** The tokenizer.json to encode with; copied into `outDir` so the shards are self-contained. */
  tokenizer: string;
  /** Tasks whose samples are written, in this order. */
  tasks: readonly TaskName[];
  /** Folder of the shards and `manifest.json`. */
  outDir: string;
  /** Seed of the samplers: the same seed, inputs and options give the same bytes. Default 0. */
  seed?: number;
  /** Samples per shard file. Default: as many as fill about 4 MB read back (`SHARD_BYTES`), per task. */
  shardSize?: number;
  /** Sequence length, dialogue window and embedding size of the tasks. */
  taskConfig?: Partial<TextTaskConfig>;
  /**
   * Token ids of the tokenized corpus kept in memory, so that the token count and every sentence task after the
   * first replay it instead of reading and tokenizing the corpus again; a larger corpus is read again each time.
   * Changes the speed only, never the bytes. Default 16,000,000 (64 MB of ids).
   */
  cacheTokens?: number;
  /**
   * Threads at work, this one included: with 2 or more, the corpus is split and encoded on a second thread
   * (`tokenizedSentences`) and the shards encoded, hashed and written on another ({@link ShardWriter}), so this
   * thread mostly samples. Default 2 on a machine with 2 or more cores. Changes the speed only, never the bytes.
   */
  threads?: number;
  /** Called after each shard is written (or found already written by an earlier run). */
  onShard?: (entry: ShardEntry, reused: boolean) => void;
  /** Stops the token count that word2vec tasks need before sampling (it then fails with StoppedError). */
  signal?: AbortSignal;
  /**
   * Input partitions: paragraph (or dialogue) k belongs to partition k % partitions, and each partition is sampled
   * on its own with a seed derived from `seed` and its index, into its own shards (`shard-<p>-of-<N>-00000.arrow`,
   * `manifest-<p>-of-<N>.json`); `manifest.json` then lists them all in partition order. A partition's bytes depend
   * only on its paragraphs, the seed and the options, so a `--queue` run (one job per partition, on any worker)
   * writes the same bytes as this one. Default 1: one stream over the whole corpus, as before partitions existed.
   */
  partitions?: number;
  /** Counts the samples of every partition into one summary (used by {@link processPartitions}). */
  tallies?: TextSampleTallies;
}

/** What {@link processCorpus} returns. */
export interface ProcessCorpusResult {
  manifest: ShardManifest;
  /** Shards written by this call. */
  written: number;
  /** Shards an earlier (killed) run had finished, checked by hash and kept. */
  reused: number;
  /** Arrow bytes of the shards produced (written or reused). */
  bytes: number;
  /**
   * Per task, the samples this call produced (written or reused; empty when an earlier run had finished): `emitted`,
   * NSP's `positives` / `negatives`, MLM's and text-CPC's most-frequent-token `baseline`.
   */
  samples: Record<string, TextSampleSummary>;
}

/** Shards written on the sampling thread before the shard-writing thread is started (see processOne). */
const WRITES_BEFORE_THREAD = 2;

/** Bytes of full shards that may wait for their write before the corpus read pauses. */
const PENDING_BYTES = 64 * 2 ** 20;

/**
 * Turns a corpus into pretext-task samples once, as Arrow IPC shards (`shard-00000.arrow`, each the samples of one
 * task: see {@link ShardBuilder} for the columns) and a `manifest.json` (version 3: counts and shapes per task,
 * sha256 per shard, seed, tokenizer hash, options). Deterministic: the samplers are seeded and the Arrow bytes
 * depend only on the samples, so the same seed gives the same bytes. Each shard and the manifest are written
 * atomically; a rerun after a kill regenerates the same sample stream but keeps shards the manifest lists as
 * finished (checked by hash) instead of writing them again. Tasks that draw words by corpus frequency (skip-gram,
 * CBOW) get the counts of a first pass over the whole corpus (every worker's part, so all workers share one
 * distribution); while the tokenized corpus fits `cacheTokens`, that pass (or the first sentence task) keeps it,
 * and the sentence tasks replay it instead of tokenizing again. With `shard: {index, count}`, the worker takes
 * every count-th paragraph or dialogue and names its files `shard-<i>-of-<N>-00000.arrow` and
 * `manifest-<i>-of-<N>.json`.
 *
 * @example
 * await processCorpus({ text: ['books/'], tasks: ['nsp', 'mlm'], tokenizer: 'tok.json', outDir: 'shards/' });
 */
export async function processCorpus(options: ProcessCorpusOptions): Promise<ProcessCorpusResult> {
  const partitions = options.partitions ?? 1;
  if (!Number.isInteger(partitions) || partitions < 1)
    throw new OptionError('--partitions', partitions, 'a positive integer (input partitions, one job each)');
  if (partitions > 1 && options.shard)
    throw new OptionError(
      '--shard',
      options.shard,
      'either --shard i/N (one worker by hand) or --partitions N, not both',
    );
  if (partitions > 1) return processPartitions(options, partitions);
  return processOne(options);
}

/**
 * Every partition of the corpus in turn ({@link processPartition}), then the merged `manifest.json`
 * ({@link mergePartitions}): what a `--queue` run's workers and coordinator do together, on one machine.
 */
async function processPartitions(options: ProcessCorpusOptions, partitions: number): Promise<ProcessCorpusResult> {
  const total: Omit<ProcessCorpusResult, 'manifest'> = { written: 0, reused: 0, bytes: 0, samples: {} };
  const { tokenizer } = await startManifest({ ...options, shard: { index: 0, count: partitions } });
  const tallies = new TextSampleTallies(tokenizer);
  for (let p = 0; p < partitions; p++) {
    const part = await processPartition({ ...options, tallies }, p, partitions);
    total.written += part.written;
    total.reused += part.reused;
    total.bytes += part.bytes;
  }
  const manifest = await mergePartitions(options.outDir, partitions);
  return { ...total, manifest, samples: tallies.summary() };
}

/**
 * Partition `index` of `count` (see {@link ProcessCorpusOptions.partitions}): its shards and
 * `manifest-<index>-of-<count>.json`, resumable like a whole run. One corpus job of a `--queue` run.
 */
export function processPartition(
  options: ProcessCorpusOptions,
  index: number,
  count: number,
): Promise<ProcessCorpusResult> {
  if (!Number.isInteger(index) || !Number.isInteger(count) || index < 0 || index >= count)
    throw new OptionError('partition', `${index}/${count}`, 'i/N with 0 <= i < N');
  return processOne({ ...options, partitions: undefined, shard: { index, count } });
}

/**
 * Writes `manifest.json` of a partitioned run from its finished partition manifests: the shards in partition
 * order, counts summed, `options.partitions` = `count`. Its bytes depend only on the partitions' manifests, so a
 * single-machine run and a `--queue` run write the same file.
 *
 * @throws DataFormatError when a partition's manifest is missing or unfinished.
 */
export async function mergePartitions(outDir: string, count: number): Promise<ShardManifest> {
  const parts: ShardManifest[] = [];
  for (let p = 0; p < count; p++) {
    const file = join(outDir, manifestNames({ index: p, count }).manifest);
    const part = await readManifestFile(file);
    if (!part?.complete)
      throw new DataFormatError(
        file,
        `partition ${p} of ${count} is ${part ? 'unfinished' : 'missing'} (rerun the same process-corpus command)`,
      );
    parts.push(part);
  }
  const first = parts[0]!;
  const counts: Record<string, number> = {};
  for (const m of parts) for (const [k, v] of Object.entries(m.counts)) counts[k] = (counts[k] ?? 0) + v;
  const manifest: ShardManifest = {
    ...first,
    complete: true,
    options: { ...first.options, shard: null, partitions: count },
    counts,
    shards: parts.flatMap((m) => m.shards),
  };
  await writeJson(join(outDir, 'manifest.json'), manifest);
  return manifest;
}

/** One stream of samples (the whole corpus, or the paragraphs of `options.shard`) into shards and a manifest. */
async function processOne(options: ProcessCorpusOptions): Promise<ProcessCorpusResult> {
  const { manifest, tokenizer } = await startManifest(options);
  const names = manifestNames(manifest.options.shard);
  const previous = await readManifestFile(join(options.outDir, names.manifest));
  if (previous && JSON.stringify(comparable(previous)) !== JSON.stringify(comparable(manifest))) {
    throw new OptionError(
      '--out',
      options.outDir,
      'a new folder, or the same inputs, tokenizer, seed and options as the run that wrote it (its manifest differs)',
    );
  }
  const done = previous?.shards ?? [];
  const result: ProcessCorpusResult = { manifest, written: 0, reused: 0, bytes: 0, samples: {} };
  if (previous?.complete) return { ...result, manifest: previous, reused: previous.shards.length };
  await removeStaleTemps(options.outDir, manifest.options.shard);
  // The shard-writing thread starts with the third shard: before that the second core belongs to the tokenizing
  // thread, and a run of one or two shards (nsp or mlm on a few MB of text) never starts it. Starting it with the
  // first full shard, near the end of such a run, slowed the tokenizing thread's last batches 2-4x.
  const thread = (options.threads ?? Math.min(2, availableParallelism())) > 1;
  let shardWriter: ShardWriter | undefined;
  try {
    return await sampleIntoShards(
      options,
      manifest,
      tokenizer,
      done,
      result,
      () => (shardWriter ??= new ShardWriter(thread, WRITES_BEFORE_THREAD)),
    );
  } finally {
    shardWriter?.close();
  }
}

/** {@link processOne} once its manifest is started: every task's samples into shards, then the finished manifest. */
async function sampleIntoShards(
  options: ProcessCorpusOptions,
  manifest: ShardManifest,
  tokenizer: Tokenizer,
  done: readonly ShardEntry[],
  result: ProcessCorpusResult,
  shardWriter: () => ShardWriter,
): Promise<ProcessCorpusResult> {
  const names = manifestNames(manifest.options.shard);
  const corpus = new SentenceCache(tokenizer, options, options.cacheTokens ?? 16_000_000);
  // Whole-corpus counts (every worker's part) for word2vec's negatives and subsampling.
  const tokenCounts = needTokenCounts(manifest.options.tasks) ? await corpus.count(options.signal) : undefined;
  if (tokenCounts) manifest.corpusTokens = tokenCounts.reduce((a, b) => a + b, 0);
  const tallies = options.tallies ?? new TextSampleTallies(tokenizer);
  const valve = new Valve();
  const made = manifest.options.tasks.map((name) => buildTextTask(name, tokenizer, manifest.taskConfig, tokenCounts));
  for (const { task } of made) manifest.shapes[task.name] = shapesOf(task, manifest.taskConfig);

  // Shards of a group are written side by side, then listed in the manifest at once (fewer fsyncs, same bytes).
  const writeGroup = async (group: readonly ShardBuilder[]): Promise<void> => {
    const first = manifest.shards.length;
    const files = group.map((_, g) => names.shard(first + g));
    const written = await writeShards(
      options.outDir,
      files,
      group,
      done.slice(first, first + group.length),
      shardWriter(),
    );
    for (const [g, { entry, reused }] of written.entries()) {
      if (reused) result.reused++;
      else result.written++;
      result.bytes += entry.bytes;
      manifest.shards.push(entry);
      manifest.counts[entry.task] = (manifest.counts[entry.task] ?? 0) + group[g]!.length;
    }
    await writeJson(join(options.outDir, names.manifest), manifest);
    for (const { entry, reused } of written) options.onShard?.(entry, reused);
  };
  const writer = new ShardQueue(writeGroup, valve, PENDING_BYTES);
  for (const [k, task] of made.entries()) {
    // Partition p > 0 draws its own numbers; partition 0 (and an unpartitioned run) those of earlier versions.
    const rng = new Rng(manifest.seed * 7919 + k * 104729 + (manifest.options.shard?.index ?? 0) * 1299709);
    const draws = task.reads === 'sentences' ? skipgramDrawsOf(task.task, rng) : undefined;
    // Kept for a later task only: 28 k sentences held to the end cost the garbage collector a copy each.
    const keep = made.slice(k + 1).some((later) => later.reads === 'sentences');
    if (draws) {
      const emitted = await fillSkipgramShards(corpus.sentences(valve, keep), draws, task.task.name, manifest, writer);
      tallies.addEmitted(task.task, emitted);
      continue;
    }
    const samples =
      task.reads === 'dialogues'
        ? textTaskSamples(task, tokenizer, options, rng, valve)
        : corpus.sentences(valve, keep).pipe(task.task.sampler({ rng }));
    await fillShards(samples.pipe(tallies.count(task.task)), task.task.name, manifest, writer);
  }
  await writer.drain();
  manifest.complete = true;
  await writeJson(join(options.outDir, names.manifest), manifest);
  return { ...result, samples: tallies.summary() };
}

/**
 * Copies each sample into the task's current shard as it is emitted (skip-gram makes millions of tiny samples:
 * none waits in a queue) and hands full shards to the writer.
 */
function fillShards(
  samples: Observable<Sample>,
  task: string,
  manifest: ShardManifest,
  writer: ShardQueue,
): Promise<void> {
  return fillShardsWith(samples, task, manifest, writer, (sample, sink) => {
    sink.current().add(sample);
    sink.rollIfFull();
  });
}

/**
 * {@link fillShards} for skip-gram: each sentence's skip-grams are drawn into flat columns ({@link SkipgramDraws},
 * the numbers its sampler draws) and copied into the shard columns whole, no object per sample. Resolves with the
 * rows written.
 */
async function fillSkipgramShards(
  sentences: Observable<TokenizedSentence>,
  draws: SkipgramDraws,
  task: string,
  manifest: ShardManifest,
  writer: ShardQueue,
): Promise<number> {
  const label = word2vecLabel(draws.width - 1);
  let emitted = 0;
  await fillShardsWith(sentences, task, manifest, writer, (sentence, sink) => {
    const rows = draws.draw(sentence.ids);
    const inputs = [draws.centers, draws.targets];
    for (let at = 0; at < rows;) {
      at = sink.current().addRows(inputs, label, true, at, rows, sentence.source);
      sink.rollIfFull();
    }
    emitted += rows;
  });
  return emitted;
}

/** The shard being filled, and handing it to the writer once full (a fresh one takes its place). */
interface ShardSink {
  current(): ShardBuilder;
  rollIfFull(): void;
}

/**
 * Subscribes to `items`, lets `put` add each to the shard being filled, hands full shards and the last partial one
 * to the writer; a failure of `put`, of the source or of the writer ends the subscription and rejects.
 */
function fillShardsWith<T>(
  items: Observable<T>,
  task: string,
  manifest: ShardManifest,
  writer: ShardQueue,
  put: (item: T, sink: ShardSink) => void,
): Promise<void> {
  const shapes = manifest.shapes[task]!;
  const size = shardCapacity(manifest.options.shardSize, shapes);
  return new Promise<void>((resolve, reject) => {
    let shard = new ShardBuilder(task, shapes, size);
    const sink: ShardSink = {
      current: () => shard,
      rollIfFull: () => {
        if (!shard.full) return;
        writer.add(shard);
        shard = new ShardBuilder(task, shapes, size);
      },
    };
    const subscription = items.subscribe({
      next: (item) => {
        try {
          put(item, sink);
        } catch (error) {
          subscription.unsubscribe();
          reject(error as Error);
        }
      },
      error: reject,
      complete: () => {
        try {
          if (shard.length > 0) writer.add(shard);
          resolve();
        } catch (error) {
          reject(error as Error);
        }
      },
    });
    writer.onFailure = (error) => {
      subscription.unsubscribe();
      reject(error);
    };
  });
}

/**
 * Full shards waiting for their write, written in order, in groups of all that wait: while they hold more than
 * `high` bytes, the valve (which the corpus read obeys) is closed.
 */
class ShardQueue {
  readonly #write: (group: readonly ShardBuilder[]) => Promise<void>;
  readonly #valve: Valve;
  readonly #high: number;
  #waiting: ShardBuilder[] = [];
  #running: Promise<void> | undefined;
  #failure: { error: Error } | undefined;
  /** Called once when a write fails (the run stops there). */
  onFailure: ((error: Error) => void) | undefined;

  constructor(write: (group: readonly ShardBuilder[]) => Promise<void>, valve: Valve, high: number) {
    this.#write = write;
    this.#valve = valve;
    this.#high = high;
  }

  /** Queues a full shard. @throws the failure of an earlier write. */
  add(shard: ShardBuilder): void {
    if (this.#failure) throw this.#failure.error;
    this.#waiting.push(shard);
    if (waitingBytes(this.#waiting) > this.#high) this.#valve.close();
    this.#start();
  }

  /** Waits for every shard added so far. @throws the first write's failure. */
  async drain(): Promise<void> {
    while (this.#running) await this.#running;
    if (this.#failure) throw this.#failure.error;
  }

  #start(): void {
    if (this.#running || this.#failure) return;
    this.#running = (async () => {
      while (this.#waiting.length > 0) {
        const group = this.#waiting;
        this.#waiting = [];
        // Sampling goes on while the group is written (at most `high` bytes more wait meanwhile).
        this.#valve.open();
        await this.#write(group);
        if (waitingBytes(this.#waiting) <= this.#high) this.#valve.open();
      }
    })()
      .catch((cause: unknown) => {
        const error = cause instanceof Error ? cause : new Error(String(cause));
        this.#failure = { error };
        this.onFailure?.(error);
      })
      .finally(() => {
        this.#running = undefined;
        if (this.#waiting.length > 0) this.#start();
      });
  }
}

function waitingBytes(shards: readonly ShardBuilder[]): number {
  return shards.reduce((n, s) => n + s.byteLength, 0);
}

/** The shapes a task declares for its samples at the run's sequence length. */
function shapesOf(task: TextTask['task'], config: TextTaskConfig): SampleShapes {
  const item = [config.maxLength];
  return { inputs: task.inputShapes(item).map((s) => [...s]), label: [...task.labelShape(item)] };
}

/**
 * The tokenized sentences of the text corpus for one worker, read once and kept while they fit `limit` token ids:
 * the token count and the second and later sentence tasks then replay them instead of reading again.
 */
class SentenceCache {
  readonly #tokenizer: Tokenizer;
  readonly #options: TokenizedSentencesOptions;
  readonly #limit: number;
  /** The worker's sentences (its paragraphs, numbered as `readSentences` numbers them), once a pass has kept them. */
  #kept: TokenizedSentence[] | undefined;

  constructor(tokenizer: Tokenizer, options: TokenizedSentencesOptions, limit: number) {
    this.#tokenizer = tokenizer;
    this.#options = options;
    this.#limit = limit;
  }

  /**
   * The count of each token id over the whole text corpus (every worker's part): what `countCorpusTokens` counts,
   * keeping the worker's sentences as it goes.
   *
   * @throws StoppedError when `signal` aborts.
   */
  async count(signal?: AbortSignal): Promise<Float64Array> {
    const counts = new Float64Array(this.#tokenizer.vocabSize);
    const whole = tokenizedSentences(this.#options.text ?? [], this.#tokenizer, { ...this.#options, shard: undefined });
    const keep = this.#keeper();
    // Counted as the sentences come (no promise a sentence, as async iteration would make).
    const counting = whole.pipe(
      tap((sentence) => {
        if (signal?.aborted) throw new StoppedError('while counting the corpus tokens (nothing was written)');
        const ids = sentence.ids;
        for (let i = 0; i < ids.length; i++) counts[ids[i]!]!++;
        keep.add(sentence);
      }),
    );
    await lastValueFrom(counting, { defaultValue: undefined });
    const shard = this.#options.shard;
    // Unsharded, readSentences numbers every paragraph: document k is paragraph k, and a worker's paragraphs are
    // those with k % count === index, numbered 0, 1, ... in its own stream.
    this.#kept = shard
      ? keep
          .done()
          ?.flatMap((s) =>
            s.document % shard.count === shard.index
              ? [{ ...s, document: (s.document - shard.index) / shard.count }]
              : [],
          )
      : keep.done();
    return counts;
  }

  /** The worker's sentences: replayed when kept, else read (and kept when they fit and `keep` asks for them). */
  sentences(valve: Valve, keep: boolean): Observable<TokenizedSentence> {
    if (this.#kept) return replay(this.#kept, valve);
    const read = tokenizedSentences(this.#options.text ?? [], this.#tokenizer, { ...this.#options, valve });
    if (!keep) return read;
    const keeper = this.#keeper();
    return read.pipe(tap({ next: (s) => keeper.add(s), complete: () => (this.#kept = keeper.done()) }));
  }

  #keeper(): { add: (s: TokenizedSentence) => void; done: () => TokenizedSentence[] | undefined } {
    let kept: TokenizedSentence[] | undefined = [];
    let tokens = 0;
    return {
      add: (s) => {
        if (!kept) return;
        tokens += s.ids.length;
        if (tokens > this.#limit) kept = undefined;
        else kept.push(s);
      },
      done: () => kept,
    };
  }
}

/** Items replayed between two turns of the event loop, so that shard writes progress beside the sampling. */
const REPLAY_SLICE = 256;

/** `items` in order, paused while the valve is closed, yielding to the event loop every {@link REPLAY_SLICE}. */
function replay<T>(items: readonly T[], valve: Valve): Observable<T> {
  return new Observable<T>((subscriber) => {
    let i = 0;
    let cancel = (): void => {};
    let timer: NodeJS.Immediate | undefined;
    const run = (): void => {
      timer = undefined;
      const end = Math.min(items.length, i + REPLAY_SLICE);
      while (i < end && !subscriber.closed) {
        if (!valve.isOpen) {
          cancel = valve.onOpen(run);
          return;
        }
        subscriber.next(items[i++]!);
      }
      if (subscriber.closed) return;
      if (i < items.length) timer = setImmediate(run);
      else subscriber.complete();
    };
    run();
    return () => {
      cancel();
      if (timer) clearImmediate(timer);
    };
  });
}

/** Validates the options, loads and copies the tokenizer, and builds an empty manifest. */
export async function startManifest(
  options: ProcessCorpusOptions,
): Promise<{ manifest: ShardManifest; tokenizer: Tokenizer }> {
  const shardSize = options.shardSize ?? null;
  if (shardSize !== null && (!Number.isInteger(shardSize) || shardSize < 1))
    throw new OptionError('--shard-size', shardSize, 'a positive integer (samples per shard)');
  const cacheTokens = options.cacheTokens ?? 16_000_000;
  if (!Number.isInteger(cacheTokens) || cacheTokens < 0)
    throw new OptionError('cacheTokens', cacheTokens, 'an integer >= 0 (token ids kept in memory)');
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new OptionError('--seed', seed, 'an integer >= 0');
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1))
    throw new OptionError('--threads', options.threads, 'a positive integer (threads at work, this one included)');
  if (options.tasks.length === 0) throw new OptionError('--tasks', [], 'at least one task');
  for (const name of options.tasks) {
    if (!TEXT_TASKS.includes(name)) throw new OptionError('--tasks', name, `text tasks: ${TEXT_TASKS.join(', ')}`);
    checkSources(name, options);
  }
  const taskConfig = resolveTextTaskConfig(options.taskConfig);
  let bytes: Buffer;
  try {
    bytes = await readFile(options.tokenizer);
  } catch {
    throw new OptionError(
      '--tokenizer',
      options.tokenizer,
      'a readable tokenizer.json (train one with pretrain --text, or take a Hugging Face one)',
    );
  }
  const tokenizer = await loadTokenizer(options.tokenizer);
  await mkdir(options.outDir, { recursive: true });
  await copyFile(options.tokenizer, join(options.outDir, 'tokenizer.json'));
  const manifest: ShardManifest = {
    version: MANIFEST_VERSION,
    complete: false,
    seed,
    tokenizer: { file: 'tokenizer.json', sha256: sha256(bytes) },
    taskConfig,
    options: {
      tasks: [...options.tasks],
      shardSize,
      shard: options.shard ? { index: options.shard.index, count: options.shard.count } : null,
      text: [...(options.text ?? [])],
      dialogues: [...(options.dialogues ?? [])],
      dialogueFormat: options.dialogueFormat ?? 'auto',
      onInvalid: options.onInvalid ?? 'fail',
    },
    shapes: {},
    counts: {},
    shards: [],
  };
  return { manifest, tokenizer };
}

/**
 * Deletes temp files a killed run of the same partition left behind (see writeFileAtomic's names); those of other
 * partitions, which other workers may be writing into the same folder right now, stay.
 */
export async function removeStaleTemps(dir: string, shard: ShardManifest['options']['shard'] = null): Promise<void> {
  const tag = shard ? `-${shard.index}-of-${shard.count}` : '';
  const stale = new RegExp(`^\\.(shard${tag}-\\d+\\.arrow|manifest${tag}\\.json)\\.\\d+\\.\\d+\\.tmp$`);
  for (const f of await readdir(dir)) if (stale.test(f)) await unlink(join(dir, f)).catch(() => {});
}

/** The parts of a manifest that must match for a rerun to resume. */
export function comparable(m: ShardManifest): unknown {
  return { version: m.version, seed: m.seed, tokenizer: m.tokenizer, taskConfig: m.taskConfig, options: m.options };
}

/**
 * Encodes and writes shards atomically, keeping those an earlier run finished (same file, task, count and hash on
 * disk): each goes to a temp name and is fsynced (by `writer`, on its thread), all side by side; then each is
 * renamed into place and the folder fsynced once for the group (a crash leaves whole shards or temps, which a
 * rerun deletes).
 */
export async function writeShards(
  dir: string,
  files: readonly string[],
  shards: readonly ShardBuilder[],
  earlier: readonly (ShardEntry | undefined)[],
  writer: ShardWriter = new ShardWriter(false),
): Promise<Array<{ entry: ShardEntry; reused: boolean }>> {
  const out = await Promise.all(
    shards.map(async (shard, i) => {
      const file = files[i]!;
      const path = join(dir, file);
      const before = earlier[i];
      if (before?.file === file && before.task === shard.task && before.samples === shard.length && existsSync(path)) {
        if (sha256(await readFile(path)) === before.sha256) return { entry: before, reused: true, temp: undefined };
      }
      const temp = tempNameFor(path);
      const entry = { file, task: shard.task, samples: shard.length, ...(await writer.write(shard, temp)) };
      return { entry, reused: false, temp };
    }),
  );
  for (const { entry, temp } of out) if (temp) await rename(temp, join(dir, entry.file));
  if (out.some((o) => o.temp)) await fsyncDir(dir);
  return out.map(({ entry, reused }) => ({ entry, reused }));
}
