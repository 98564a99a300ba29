import { Valve } from '../core/valve.ts';
import { Rng } from '../core/rng.ts';
import { OptionError } from '../core/errors.ts';
import { writeFileAtomic, writeJson } from '../core/atomicWrite.ts';
import { defer, map, concat } from 'rxjs';
import { join } from 'node:path';
import type { TaskName } from '../tasks/registry.ts';
import { loadTokenizer } from '../text/tokenizers/loadTokenizer.ts';
import type { TextSourceOptions } from '../text/sources.ts';
import { readManifestFile, manifestNames, type ShardEntry, type ShardManifest } from './shards.ts';
import { valveValues } from '../core/asyncValues.ts';
import {
  textTaskSamples,
  buildTextTask,
  TEXT_TASKS,
  checkSources,
  countCorpusTokens,
  needTokenCounts,
  TextSampleTallies,
  type TextSampleSummary,
} from './textTasks.ts';
import { resolveTextTaskConfig } from '../tasks/text/textTaskConfig.ts';
import type { TextTaskConfig } from '../tasks/text/textTaskConfig.ts';
import { readFile, mkdir, copyFile, unlink, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import type { Sample } from '../pipeline/sample.ts';

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
  /** Uncompressed JSONL bytes produced (written or reused). */
  jsonBytes: number;
  /**
   * Per task, the samples this call produced (written or reused; empty when an earlier run had finished): `emitted`,
   * NSP's `positives` / `negatives`, MLM's and text-CPC's most-frequent-token `baseline`.
   */
  samples: Record<string, TextSampleSummary>;
}

/**
 * Turns a corpus into pretext-task samples once, as gzip-compressed JSONL shards (`shard-00000.jsonl.gz`, one
 * `{"task", "inputs": number[][], "label": number[]}` a line) and a `manifest.json` (counts per task, sha256 per
 * shard, seed, tokenizer hash, options). Deterministic: gzip is run with a fixed level and a zero mtime, and the
 * samplers are seeded, so the same seed gives the same bytes. Each shard and the manifest are written atomically;
 * a rerun after a kill regenerates the same sample stream but keeps shards the manifest lists as finished (checked
 * by hash) instead of writing them again. Tasks that draw words by corpus frequency (skip-gram, CBOW) get the
 * counts of a first pass over the whole corpus (every worker's part, so all workers share one distribution). With `shard: {index, count}`, the worker takes every count-th
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
    throw new OptionError(
      '--out',
      options.outDir,
      'a new folder, or the same inputs, tokenizer, seed and options as the run that wrote it (its manifest differs)',
    );
  }
  const done = previous?.shards ?? [];
  const result: ProcessCorpusResult = { manifest, written: 0, reused: 0, jsonBytes: 0, samples: {} };
  if (previous?.complete) return { ...result, manifest: previous, reused: previous.shards.length };
  await removeStaleTemps(options.outDir);
  const tokenizer = await loadTokenizer(join(options.outDir, manifest.tokenizer.file));
  // Whole-corpus counts (every worker's part) for word2vec's negatives and subsampling.
  const tokenCounts = needTokenCounts(manifest.options.tasks)
    ? await countCorpusTokens(tokenizer, { ...options, signal: options.signal })
    : undefined;
  if (tokenCounts) manifest.corpusTokens = tokenCounts.reduce((a, b) => a + b, 0);
  const tallies = new TextSampleTallies(tokenizer);
  const valve = new Valve();
  const streams = manifest.options.tasks.map((name, k) => {
    const task = buildTextTask(name, tokenizer, manifest.taskConfig, tokenCounts);
    return defer(() =>
      textTaskSamples(task, tokenizer, options, new Rng(manifest.seed * 7919 + k * 104729), valve),
    ).pipe(
      tallies.count(task.task),
      map((sample) => sampleLine(name, sample)),
    );
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
  return { ...result, samples: tallies.summary() };
}

/** Validates the options, copies the tokenizer and builds an empty manifest. */
export async function startManifest(options: ProcessCorpusOptions): Promise<ShardManifest> {
  const shardSize = options.shardSize ?? 10000;
  if (!Number.isInteger(shardSize) || shardSize < 1)
    throw new OptionError('--shard-size', shardSize, 'a positive integer (samples per shard)');
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
export async function removeStaleTemps(dir: string): Promise<void> {
  for (const f of await readdir(dir))
    if (/^\.(shard|manifest).*\.tmp$/.test(f)) await unlink(join(dir, f)).catch(() => {});
}

/** The parts of a manifest that must match for a rerun to resume. */
export function comparable(m: ShardManifest): unknown {
  return { version: m.version, seed: m.seed, tokenizer: m.tokenizer, taskConfig: m.taskConfig, options: m.options };
}

/** Gzips and writes one shard atomically, unless an earlier run finished this very shard (same hash on disk). */
export async function writeShard(
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

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** One JSONL line of a sample. */
export function sampleLine(task: TaskName, sample: Sample): { task: TaskName; text: string } {
  const inputs = sample.inputs.map((a) => Array.from(a));
  return { task, text: JSON.stringify({ task, inputs, label: Array.from(sample.label) }) + '\n' };
}
