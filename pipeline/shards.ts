import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { concat, concatMap, defer, filter, map, type Observable } from 'rxjs';
import type { TaskName } from '../tasks/registry.ts';
import type { Sample } from '../tasks/task.ts';
import { readLines } from '../text/readCorpus.ts';
import { loadTokenizer } from '../text/tokenizers/loadTokenizer.ts';
import { writeJson } from './checkpoint.ts';
import { DataFormatError, OptionError } from './errors.ts';
import { writeFileAtomic } from './modelIO.ts';
import { buildTextTask, checkSources, resolveTextTaskConfig, TEXT_TASKS, textTaskSamples, type TextSourceOptions, type TextTaskConfig } from './pretrainText.ts';
import { Rng } from './rng.ts';
import { Valve } from './valve.ts';

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
  /** gzip level, 1..9. Default 6. */
  level?: number;
  /** Called after each shard is written (or found already written by an earlier run). */
  onShard?: (entry: ShardEntry, reused: boolean) => void;
}

/** One finished shard file. */
export interface ShardEntry {
  /** File name inside the output folder. */
  file: string;
  samples: number;
  bytes: number;
  /** Hex sha256 of the file's bytes. */
  sha256: string;
  /** Samples per task in this shard. */
  tasks: Record<string, number>;
}

/** What `manifest.json` holds: enough to check, resume and read back a process-corpus run. */
export interface ShardManifest {
  version: 1;
  /** True once every sample has been written. */
  complete: boolean;
  seed: number;
  /** The tokenizer copied beside the shards, with the hash of its bytes. */
  tokenizer: { file: string; sha256: string };
  taskConfig: TextTaskConfig;
  /** Every option that changes the bytes; a rerun with other options refuses to resume. */
  options: {
    tasks: TaskName[];
    shardSize: number;
    level: number;
    shard: { index: number; count: number } | null;
    text: string[];
    dialogues: string[];
    dialogueFormat: string;
    onInvalid: string;
  };
  /** Samples per task over finished shards. */
  counts: Record<string, number>;
  shards: ShardEntry[];
}

/** What {@link processCorpus} returns. */
export interface ProcessCorpusResult {
  manifest: ShardManifest;
  /** Shards written by this call. */
  written: number;
  /** Shards an earlier (killed) run had finished, checked by hash and kept. */
  reused: number;
  /** Uncompressed JSONL bytes produced (written or reused). */
  jsonBytes: number;
}

/**
 * Turns a corpus into pretext-task samples once, as gzip-compressed JSONL shards (`shard-00000.jsonl.gz`, one
 * `{"task", "inputs": number[][], "label": number[]}` a line) and a `manifest.json` (counts per task, sha256 per
 * shard, seed, tokenizer hash, options). Deterministic: gzip is run with a fixed level and a zero mtime, and the
 * samplers are seeded, so the same seed gives the same bytes. Each shard and the manifest are written atomically;
 * a rerun after a kill regenerates the same sample stream but keeps shards the manifest lists as finished (checked
 * by hash) instead of writing them again. With `shard: {index, count}`, the worker takes every count-th
 * paragraph or dialogue and names its files `shard-<i>-of-<N>-00000.jsonl.gz` and `manifest-<i>-of-<N>.json`.
 *
 * @example
 * await processCorpus({ text: ['books/'], tasks: ['nsp', 'mlm'], tokenizer: 'tok.json', outDir: 'shards/' });
 */
export async function processCorpus(options: ProcessCorpusOptions): Promise<ProcessCorpusResult> {
  const manifest = await startManifest(options);
  const names = manifestNames(manifest.options.shard);
  const previous = await readManifestFile(join(options.outDir, names.manifest));
  if (previous && JSON.stringify(comparable(previous)) !== JSON.stringify(comparable(manifest))) {
    throw new OptionError('--out', options.outDir, 'a new folder, or the same inputs, tokenizer, seed and options as the run that wrote it (its manifest differs)');
  }
  const done = previous?.shards ?? [];
  const result: ProcessCorpusResult = { manifest, written: 0, reused: 0, jsonBytes: 0 };
  if (previous?.complete) return { ...result, manifest: previous, reused: previous.shards.length };
  await removeStaleTemps(options.outDir);
  const tokenizer = await loadTokenizer(join(options.outDir, manifest.tokenizer.file));
  const valve = new Valve();
  const streams = manifest.options.tasks.map((name, k) => {
    const task = buildTextTask(name, tokenizer, manifest.taskConfig);
    return defer(() => textTaskSamples(task, tokenizer, options, new Rng(manifest.seed * 7919 + k * 104729), valve)).pipe(map((sample) => sampleLine(name, sample)));
  });
  let lines: string[] = [];
  let tasks: Record<string, number> = {};
  const flush = async (): Promise<void> => {
    if (lines.length === 0) return;
    const index = manifest.shards.length;
    const file = names.shard(index);
    const json = Buffer.from(lines.join(''));
    result.jsonBytes += json.length;
    const entry = await writeShard(options.outDir, file, json, tasks, manifest.options.level, done[index]);
    if (entry.reused) result.reused++;
    else result.written++;
    manifest.shards.push(entry.entry);
    for (const [name, n] of Object.entries(tasks)) manifest.counts[name] = (manifest.counts[name] ?? 0) + n;
    await writeJson(join(options.outDir, names.manifest), manifest);
    options.onShard?.(entry.entry, entry.reused);
    lines = [];
    tasks = {};
  };
  for await (const line of valveValues(concat(...streams), valve, manifest.options.shardSize)) {
    lines.push(line.text);
    tasks[line.task] = (tasks[line.task] ?? 0) + 1;
    if (lines.length >= manifest.options.shardSize) await flush();
  }
  await flush();
  manifest.complete = true;
  await writeJson(join(options.outDir, names.manifest), manifest);
  return result;
}

/** Validates the options, copies the tokenizer and builds an empty manifest. */
async function startManifest(options: ProcessCorpusOptions): Promise<ShardManifest> {
  const shardSize = options.shardSize ?? 10000;
  if (!Number.isInteger(shardSize) || shardSize < 1) throw new OptionError('--shard-size', shardSize, 'a positive integer (samples per shard)');
  const level = options.level ?? 6;
  if (!Number.isInteger(level) || level < 1 || level > 9) throw new OptionError('level', level, 'an integer 1..9');
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
    throw new OptionError('--tokenizer', options.tokenizer, 'a readable tokenizer.json (train one with pretrain --text, or take a Hugging Face one)');
  }
  await loadTokenizer(options.tokenizer);
  await mkdir(options.outDir, { recursive: true });
  await copyFile(options.tokenizer, join(options.outDir, 'tokenizer.json'));
  return {
    version: 1,
    complete: false,
    seed,
    tokenizer: { file: 'tokenizer.json', sha256: sha256(bytes) },
    taskConfig,
    options: {
      tasks: [...options.tasks],
      shardSize,
      level,
      shard: options.shard ? { index: options.shard.index, count: options.shard.count } : null,
      text: [...(options.text ?? [])],
      dialogues: [...(options.dialogues ?? [])],
      dialogueFormat: options.dialogueFormat ?? 'auto',
      onInvalid: options.onInvalid ?? 'fail',
    },
    counts: {},
    shards: [],
  };
}

/** Deletes temp files a killed run left behind (see writeFileAtomic's names). */
async function removeStaleTemps(dir: string): Promise<void> {
  for (const f of await readdir(dir)) if (/^\.(shard|manifest).*\.tmp$/.test(f)) await unlink(join(dir, f)).catch(() => {});
}

/** The parts of a manifest that must match for a rerun to resume. */
function comparable(m: ShardManifest): unknown {
  return { version: m.version, seed: m.seed, tokenizer: m.tokenizer, taskConfig: m.taskConfig, options: m.options };
}

/** File names of a worker's shards and manifest. */
function manifestNames(shard: ShardManifest['options']['shard']): { manifest: string; shard: (i: number) => string } {
  const tag = shard ? `-${shard.index}-of-${shard.count}` : '';
  return { manifest: `manifest${tag}.json`, shard: (i) => `shard${tag}-${String(i).padStart(5, '0')}.jsonl.gz` };
}

/** Gzips and writes one shard atomically, unless an earlier run finished this very shard (same hash on disk). */
async function writeShard(
  dir: string,
  file: string,
  json: Buffer,
  tasks: Record<string, number>,
  level: number,
  earlier: ShardEntry | undefined,
): Promise<{ entry: ShardEntry; reused: boolean }> {
  const samples = Object.values(tasks).reduce((a, b) => a + b, 0);
  const path = join(dir, file);
  if (earlier && earlier.file === file && earlier.samples === samples && existsSync(path)) {
    const onDisk = await readFile(path);
    if (sha256(onDisk) === earlier.sha256) return { entry: earlier, reused: true };
  }
  // gzipSync writes mtime 0 and no file name in the header, so equal input gives equal bytes.
  const bytes = gzipSync(json, { level });
  await writeFileAtomic(path, bytes);
  return { entry: { file, samples, bytes: bytes.length, sha256: sha256(bytes), tasks: { ...tasks } }, reused: false };
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** One JSONL line of a sample. */
function sampleLine(task: TaskName, sample: Sample): { task: TaskName; text: string } {
  const inputs = sample.inputs.map((a) => Array.from(a));
  return { task, text: JSON.stringify({ task, inputs, label: Array.from(sample.label) }) + '\n' };
}

/**
 * An observable as an async iterable, with backpressure: the valve (which the text sources obey) closes while
 * more than `high` values wait, and opens again once the consumer has taken them.
 */
async function* valveValues<T>(source: Observable<T>, valve: Valve, high: number): AsyncGenerator<T> {
  const buffer: T[] = [];
  let done = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const subscription = source.subscribe({
    next: (v) => {
      buffer.push(v);
      if (buffer.length > high) valve.close();
      poke();
    },
    error: (error: unknown) => ((failure = { error }), poke()),
    complete: () => ((done = true), poke()),
  });
  try {
    let head = 0;
    for (;;) {
      if (head < buffer.length) {
        const value = buffer[head]!;
        head++;
        if (head === buffer.length) (buffer.length = 0), (head = 0), valve.open();
        yield value;
      } else if (failure) throw failure.error;
      else if (done) return;
      else await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    subscription.unsubscribe();
  }
}

async function readManifestFile(path: string): Promise<ShardManifest | undefined> {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(await readFile(path, 'utf8')) as ShardManifest;
  } catch (cause) {
    throw new DataFormatError(path, `not a valid manifest: ${(cause as Error).message} (delete the folder and rerun process-corpus)`, { cause });
  }
}

/**
 * The manifests of a process-corpus folder (one, or one per `--shard` worker), merged: their shards in worker
 * order and their counts summed.
 *
 * @throws DataFormatError when the folder holds no manifest, a run is unfinished, or workers disagree.
 */
export async function readShardManifest(dir: string): Promise<ShardManifest> {
  const files = existsSync(dir) ? (await readdir(dir)).filter((f) => /^manifest(-\d+-of-\d+)?\.json$/.test(f)).sort(byWorker) : [];
  if (files.length === 0) throw new DataFormatError(dir, 'no manifest.json: not a process-corpus folder (run tempo-ssl process-corpus --out DIR first)');
  const manifests: ShardManifest[] = [];
  for (const f of files) manifests.push((await readManifestFile(join(dir, f)))!);
  const first = manifests[0]!;
  manifests.forEach((m, i) => {
    if (!m.complete) throw new DataFormatError(join(dir, files[i]!), 'unfinished: process-corpus was stopped before the end (rerun the same command to finish it)');
    if (m.tokenizer.sha256 !== first.tokenizer.sha256 || JSON.stringify(m.taskConfig) !== JSON.stringify(first.taskConfig)) {
      throw new DataFormatError(join(dir, files[i]!), `tokenizer or task settings differ from ${files[0]} (process every worker with the same options)`);
    }
  });
  const counts: Record<string, number> = {};
  for (const m of manifests) for (const [k, v] of Object.entries(m.counts)) counts[k] = (counts[k] ?? 0) + v;
  return { ...first, counts, shards: manifests.flatMap((m) => m.shards) };
}

function byWorker(a: string, b: string): number {
  const n = (f: string): number => Number(/-(\d+)-of-/.exec(f)?.[1] ?? -1);
  return n(a) - n(b);
}

/** Options of {@link shardSamples}. */
export interface ShardSamplesOptions {
  /** Backpressure: reading pauses while it is closed. */
  valve?: Valve;
}

/**
 * The samples of one task from a process-corpus folder, in the order they were written, as plain Float32Arrays.
 *
 * @throws (via the stream) DataFormatError for a line that is not a sample; OptionError when the folder holds no
 *   sample of the task.
 */
export function shardSamples(dir: string, task: TaskName, options: ShardSamplesOptions = {}): Observable<Sample> {
  return defer(async () => {
    const manifest = await readShardManifest(dir);
    if (!manifest.counts[task]) {
      throw new OptionError('--tasks', task, `a task with samples in ${dir} (it has ${Object.keys(manifest.counts).join(', ') || 'none'})`);
    }
    return manifest.shards.filter((s) => (s.tasks[task] ?? 0) > 0).map((s) => join(dir, s.file));
  }).pipe(
    concatMap((files) => readLines(files, { valve: options.valve })),
    filter((line) => line.text !== ''),
    map((line) => parseSampleLine(line.text, `${line.source}:${line.line}`)),
    filter((parsed) => parsed.task === task),
    map((parsed) => parsed.sample),
  );
}

/** One shard line back to a sample. */
export function parseSampleLine(text: string, where: string): { task: string; sample: Sample } {
  let record: { task?: unknown; inputs?: unknown; label?: unknown };
  try {
    record = JSON.parse(text) as typeof record;
  } catch (cause) {
    throw new DataFormatError(where, `not a sample line: ${(cause as Error).message} (rerun process-corpus into a new folder)`, { cause });
  }
  const numbers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number');
  if (typeof record.task !== 'string' || !Array.isArray(record.inputs) || !record.inputs.every(numbers) || !numbers(record.label)) {
    throw new DataFormatError(where, 'a sample line needs {"task": string, "inputs": number[][], "label": number[]}');
  }
  return { task: record.task, sample: { inputs: (record.inputs as number[][]).map((a) => Float32Array.from(a)), label: Float32Array.from(record.label), source: where } };
}
