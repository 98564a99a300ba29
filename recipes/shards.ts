import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { concatMap, defer, filter, map, type Observable } from 'rxjs';
import type { TaskName } from '../tasks/registry.ts';
import type { Sample } from '../pipeline/sample.ts';
import { readLines } from '../text/readCorpus.ts';
import { DataFormatError, OptionError } from '../core/errors.ts';
import type { TextTaskConfig } from '../tasks/text/textTaskConfig.ts';
import type { Valve } from '../core/valve.ts';

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
  /** Tokens of the whole corpus counted for word2vec's negatives and subsampling (absent when no task needed them). */
  corpusTokens?: number;
  shards: ShardEntry[];
}

/** File names of a worker's shards and manifest. */
export function manifestNames(shard: ShardManifest['options']['shard']): {
  manifest: string;
  shard: (i: number) => string;
} {
  const tag = shard ? `-${shard.index}-of-${shard.count}` : '';
  return { manifest: `manifest${tag}.json`, shard: (i) => `shard${tag}-${String(i).padStart(5, '0')}.jsonl.gz` };
}

export async function readManifestFile(path: string): Promise<ShardManifest | undefined> {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(await readFile(path, 'utf8')) as ShardManifest;
  } catch (cause) {
    throw new DataFormatError(
      path,
      `not a valid manifest: ${(cause as Error).message} (delete the folder and rerun process-corpus)`,
      { cause },
    );
  }
}

/**
 * The manifests of a process-corpus folder (one, or one per `--shard` worker), merged: their shards in worker
 * order and their counts summed.
 *
 * @throws DataFormatError when the folder holds no manifest, a run is unfinished, or workers disagree.
 */
export async function readShardManifest(dir: string): Promise<ShardManifest> {
  const files = existsSync(dir)
    ? (await readdir(dir)).filter((f) => /^manifest(-\d+-of-\d+)?\.json$/.test(f)).sort(byWorker)
    : [];
  if (files.length === 0)
    throw new DataFormatError(
      dir,
      'no manifest.json: not a process-corpus folder (run tempo-ssl process-corpus --out DIR first)',
    );
  const manifests: ShardManifest[] = [];
  for (const f of files) manifests.push((await readManifestFile(join(dir, f)))!);
  const first = manifests[0]!;
  manifests.forEach((m, i) => {
    if (!m.complete)
      throw new DataFormatError(
        join(dir, files[i]!),
        'unfinished: process-corpus was stopped before the end (rerun the same command to finish it)',
      );
    if (
      m.tokenizer.sha256 !== first.tokenizer.sha256 ||
      JSON.stringify(m.taskConfig) !== JSON.stringify(first.taskConfig)
    ) {
      throw new DataFormatError(
        join(dir, files[i]!),
        `tokenizer or task settings differ from ${files[0]} (process every worker with the same options)`,
      );
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
      throw new OptionError(
        '--tasks',
        task,
        `a task with samples in ${dir} (it has ${Object.keys(manifest.counts).join(', ') || 'none'})`,
      );
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
    throw new DataFormatError(
      where,
      `not a sample line: ${(cause as Error).message} (rerun process-corpus into a new folder)`,
      { cause },
    );
  }
  const numbers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number');
  if (
    typeof record.task !== 'string' ||
    !Array.isArray(record.inputs) ||
    !record.inputs.every(numbers) ||
    !numbers(record.label)
  ) {
    throw new DataFormatError(where, 'a sample line needs {"task": string, "inputs": number[][], "label": number[]}');
  }
  return {
    task: record.task,
    sample: {
      inputs: (record.inputs as number[][]).map((a) => Float32Array.from(a)),
      label: Float32Array.from(record.label),
      source: where,
    },
  };
}
