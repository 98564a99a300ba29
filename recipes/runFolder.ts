import { existsSync } from 'node:fs';
import { readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { NoSamplesError, RunFolderError } from '../core/errors.ts';
import { hasCheckpoint } from '../training/checkpoint.ts';
import type { TrainResult } from '../training/trainer.ts';

/** What a run writes into its folder; `--force` removes these and nothing else. */
export const RUN_ENTRIES: readonly string[] = [
  'run.json',
  'metrics.jsonl',
  'checkpoint',
  'checkpoint.old',
  'encoder',
  'heads',
  'tokenizer.json',
  // What evaluate and report write beside a run: stale once the run is replaced.
  'evaluation.json',
  'report.html',
];

/** Options of {@link prepareRunFolder}. */
export interface RunFolderOptions {
  /** Continue the run in the folder: it must hold a run and its checkpoint. */
  resume?: boolean;
  /** Start afresh in a folder that holds a run: its run files ({@link RUN_ENTRIES}) are removed first. */
  force?: boolean;
}

/** A run folder checked by {@link prepareRunFolder}. */
export interface RunFolder {
  readonly path: string;
  /** The folder did not exist before this run. */
  readonly created: boolean;
  /** The run starts from step 0 in a folder that held no run (missing, empty, or cleared by `force`). */
  readonly fresh: boolean;
}

/**
 * Checks a run folder before anything is written to it, so no run is lost or silently restarted:
 * - a folder that is missing or empty is new;
 * - a non-empty one is refused unless `resume` (continue it) or `force` (clear its run files) is given;
 * - `resume` needs `run.json` and a checkpoint, and names the folder and what is missing otherwise.
 * Temporary checkpoint folders of dead runs (`checkpoint.tmp-<pid>`, see training/checkpoint.ts) are removed.
 *
 * @example
 * const folder = await prepareRunFolder('runs/a', { resume: false }); // throws RunFolderError if runs/a holds a run
 */
export async function prepareRunFolder(path: string, options: RunFolderOptions = {}): Promise<RunFolder> {
  if (options.resume && options.force)
    throw new RunFolderError(path, '--resume and --force contradict each other: give one of them');
  const created = !existsSync(path);
  if (!created) await removeDeadCheckpointTemps(path);
  const entries = created ? [] : await readdir(path);
  if (options.resume) {
    const missing = [
      created && 'the folder itself',
      !created && !entries.includes('run.json') && 'run.json',
      !created && !hasCheckpoint(join(path, 'checkpoint')) && 'checkpoint/state.json',
    ].filter(Boolean);
    if (missing.length > 0)
      throw new RunFolderError(
        path,
        `nothing to resume: ${missing.join(' and ')} missing (the run wrote no checkpoint yet); run without --resume to start afresh`,
      );
    return { path, created, fresh: false };
  }
  if (entries.length > 0 && !options.force) {
    const shown = entries.slice(0, 4).join(', ') + (entries.length > 4 ? ', ...' : '');
    throw new RunFolderError(
      path,
      `not empty (${shown}): pass --resume to continue its run, --force to overwrite it, or choose a new --out`,
    );
  }
  if (options.force) {
    for (const entry of RUN_ENTRIES) await rm(join(path, entry), { recursive: true, force: true });
  }
  return { path, created, fresh: true };
}

/**
 * Removes `checkpoint.tmp-<pid>` folders whose process is gone: a run killed while writing a checkpoint leaves
 * one (the checkpoint itself stays whole). A live process's folder is left alone.
 */
export async function removeDeadCheckpointTemps(path: string): Promise<string[]> {
  const removed: string[] = [];
  for (const entry of await readdir(path)) {
    const pid = /^checkpoint\.tmp-(\d+)$/.exec(entry)?.[1];
    if (pid === undefined || isAlive(Number(pid))) continue;
    await rm(join(path, entry), { recursive: true, force: true });
    removed.push(entry);
  }
  return removed;
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * After training: a run that took no step because its inputs gave no sample is an error naming the inputs, and a
 * run that took no step in a fresh folder leaves no files behind (so the same command can be run again).
 *
 * @throws NoSamplesError when the data ended before the first step.
 */
export async function finishRunFolder(
  folder: RunFolder | undefined,
  result: Pick<TrainResult, 'steps' | 'startStep' | 'stoppedBy'>,
  inputs: readonly string[],
  what: string,
): Promise<void> {
  if (result.steps > result.startStep) return;
  if (folder?.fresh) {
    for (const entry of RUN_ENTRIES) await rm(join(folder.path, entry), { recursive: true, force: true });
    if (folder.created) await rmdir(folder.path).catch(() => {});
  }
  if (result.stoppedBy === 'data')
    throw new NoSamplesError(inputs, `no ${what} (0 training samples; nothing was trained)`);
}
