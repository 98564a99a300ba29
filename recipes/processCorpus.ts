import { Valve } from '../core/valve.ts';
import { Rng } from '../core/rng.ts';
import { OptionError, StoppedError } from '../core/errors.ts';
import { writeFileAtomic, writeJson } from '../core/atomicWrite.ts';
import { bufferCount, Observable, tap } from 'rxjs';
import { join } from 'node:path';
import type { TaskName } from '../tasks/registry.ts';
import { loadTokenizer } from '../text/tokenizers/loadTokenizer.ts';
import type { Tokenizer } from '../text/tokenizers/Tokenizer.ts';
import { readSentences, type TextSourceOptions } from '../text/sources.ts';
import { tokenizeSentences, type TokenizedSentence } from '../text/tokenizedSentence.ts';
import {
  manifestNames,
  MANIFEST_VERSION,
  readManifestFile,
  ShardBuilder,
  type SampleShapes,
  type ShardEntry,
  type ShardManifest,
} from './shards.ts';
import { observableValues, valveValues } from '../core/asyncValues.ts';
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
import { readFile, mkdir, copyFile, unlink, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';

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
  /** Samples per shard file. Default 10000. */
  shardSize?: number;
  /** Sequence length, dialogue window and embedding size of the tasks. */
  taskConfig?: Partial<TextTaskConfig>;
  /**
   * Token ids of the tokenized corpus kept in memory, so that the token count and every sentence task after the
   * first replay it instead of reading and tokenizing the corpus again; a larger corpus is read again each time.
   * Changes the speed only, never the bytes. Default 16,000,000 (64 MB of ids).
   */
  cacheTokens?: number;
  /** Called after each shard is written (or found already written by an earlier run). */
  onShard?: (entry: ShardEntry, reused: boolean) => void;
  /** Stops the token count that word2vec tasks need before sampling (it then fails with StoppedError). */
  signal?: AbortSignal;
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

/** Samples a task's stream hands to the writer at once, and batches that wait before the corpus read pauses. */
const BATCH = 1024;
const QUEUED_BATCHES = 16;

/**
 * Turns a corpus into pretext-task samples once, as Arrow IPC shards (`shard-00000.arrow`, each the samples of one
 * task: see {@link ShardBuilder} for the columns) and a `manifest.json` (version 2: counts and shapes per task,
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
  const manifest = await startManifest(options);
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
  await removeStaleTemps(options.outDir);
  const tokenizer = await loadTokenizer(join(options.outDir, manifest.tokenizer.file));
  const corpus = new SentenceCache(tokenizer, options, options.cacheTokens ?? 16_000_000);
  // Whole-corpus counts (every worker's part) for word2vec's negatives and subsampling.
  const tokenCounts = needTokenCounts(manifest.options.tasks) ? await corpus.count(options.signal) : undefined;
  if (tokenCounts) manifest.corpusTokens = tokenCounts.reduce((a, b) => a + b, 0);
  const tallies = new TextSampleTallies(tokenizer);
  const valve = new Valve();
  const made = manifest.options.tasks.map((name) => buildTextTask(name, tokenizer, manifest.taskConfig, tokenCounts));
  for (const { task } of made) manifest.shapes[task.name] = shapesOf(task, manifest.taskConfig);

  const flush = async (shard: ShardBuilder): Promise<void> => {
    const index = manifest.shards.length;
    const entry = await writeShard(options.outDir, names.shard(index), shard, done[index]);
    if (entry.reused) result.reused++;
    else result.written++;
    result.bytes += entry.entry.bytes;
    manifest.shards.push(entry.entry);
    manifest.counts[shard.task] = (manifest.counts[shard.task] ?? 0) + shard.length;
    await writeJson(join(options.outDir, names.manifest), manifest);
    options.onShard?.(entry.entry, entry.reused);
  };
  for (const [k, task] of made.entries()) {
    const rng = new Rng(manifest.seed * 7919 + k * 104729);
    const samples =
      task.reads === 'dialogues'
        ? textTaskSamples(task, tokenizer, options, rng, valve)
        : corpus.sentences(valve).pipe(task.task.sampler({ rng }));
    const shapes = manifest.shapes[task.task.name]!;
    let shard = new ShardBuilder(task.task.name, shapes, manifest.options.shardSize);
    // Batches, not single samples, cross the async boundary: skip-gram makes millions of tiny samples.
    for await (const batch of valveValues(
      samples.pipe(tallies.count(task.task), bufferCount(BATCH)),
      valve,
      QUEUED_BATCHES,
    )) {
      for (const sample of batch) {
        shard.add(sample);
        if (shard.full) {
          await flush(shard);
          shard = new ShardBuilder(task.task.name, shapes, manifest.options.shardSize);
        }
      }
    }
    if (shard.length > 0) await flush(shard);
  }
  manifest.complete = true;
  await writeJson(join(options.outDir, names.manifest), manifest);
  return { ...result, samples: tallies.summary() };
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
  readonly #options: TextSourceOptions;
  readonly #limit: number;
  /** The worker's sentences (its paragraphs, numbered as `readSentences` numbers them), once a pass has kept them. */
  #kept: TokenizedSentence[] | undefined;

  constructor(tokenizer: Tokenizer, options: TextSourceOptions, limit: number) {
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
    const whole = readSentences(this.#options.text ?? [], { ...this.#options, shard: undefined }).pipe(
      tokenizeSentences(this.#tokenizer),
    );
    const keep = this.#keeper();
    for await (const sentence of observableValues(whole)) {
      if (signal?.aborted) throw new StoppedError('while counting the corpus tokens (nothing was written)');
      const ids = sentence.ids;
      for (let i = 0; i < ids.length; i++) counts[ids[i]!]!++;
      keep.add(sentence);
    }
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

  /** The worker's sentences: replayed when kept, else read (and kept when they fit). */
  sentences(valve: Valve): Observable<TokenizedSentence> {
    if (this.#kept) return replay(this.#kept, valve);
    const keep = this.#keeper();
    return readSentences(this.#options.text ?? [], { ...this.#options, valve }).pipe(
      tokenizeSentences(this.#tokenizer),
      tap({ next: (s) => keep.add(s), complete: () => (this.#kept = keep.done()) }),
    );
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

/** `items` in order, paused while the valve is closed. */
function replay<T>(items: readonly T[], valve: Valve): Observable<T> {
  return new Observable<T>((subscriber) => {
    let i = 0;
    let cancel = (): void => {};
    const run = (): void => {
      while (i < items.length && !subscriber.closed) {
        if (!valve.isOpen) {
          cancel = valve.onOpen(run);
          return;
        }
        subscriber.next(items[i++]!);
      }
      subscriber.complete();
    };
    run();
    return () => cancel();
  });
}

/** Validates the options, copies the tokenizer and builds an empty manifest. */
export async function startManifest(options: ProcessCorpusOptions): Promise<ShardManifest> {
  const shardSize = options.shardSize ?? 10000;
  if (!Number.isInteger(shardSize) || shardSize < 1)
    throw new OptionError('--shard-size', shardSize, 'a positive integer (samples per shard)');
  const cacheTokens = options.cacheTokens ?? 16_000_000;
  if (!Number.isInteger(cacheTokens) || cacheTokens < 0)
    throw new OptionError('cacheTokens', cacheTokens, 'an integer >= 0 (token ids kept in memory)');
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new OptionError('--seed', seed, 'an integer >= 0');
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
  await loadTokenizer(options.tokenizer);
  await mkdir(options.outDir, { recursive: true });
  await copyFile(options.tokenizer, join(options.outDir, 'tokenizer.json'));
  return {
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
}

/** Deletes temp files a killed run left behind (see writeFileAtomic's names). */
export async function removeStaleTemps(dir: string): Promise<void> {
  for (const f of await readdir(dir))
    if (/^\.(shard|manifest).*\.tmp$/.test(f)) await unlink(join(dir, f)).catch(() => {});
}

/** The parts of a manifest that must match for a rerun to resume. */
export function comparable(m: ShardManifest): unknown {
  return { version: m.version, seed: m.seed, tokenizer: m.tokenizer, taskConfig: m.taskConfig, options: m.options };
}

/** Encodes and writes one shard atomically, unless an earlier run finished this very shard (same hash on disk). */
export async function writeShard(
  dir: string,
  file: string,
  shard: ShardBuilder,
  earlier: ShardEntry | undefined,
): Promise<{ entry: ShardEntry; reused: boolean }> {
  const path = join(dir, file);
  if (
    earlier &&
    earlier.file === file &&
    earlier.task === shard.task &&
    earlier.samples === shard.length &&
    existsSync(path)
  ) {
    const onDisk = await readFile(path);
    if (sha256(onDisk) === earlier.sha256) return { entry: earlier, reused: true };
  }
  const bytes = shard.encode();
  await writeFileAtomic(path, bytes);
  const entry = { file, task: shard.task, samples: shard.length, bytes: bytes.length, sha256: sha256(bytes) };
  return { entry, reused: false };
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
