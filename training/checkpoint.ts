import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelIOError } from '../core/errors.ts';
import { loadModel, saveModel, writeFileAtomic } from '../models/modelIO.ts';
import type { StreamPosition } from '../pipeline/pullQueue.ts';
import type { TaskParts } from '../tasks/task.ts';

/** Everything besides weights that a resumed run needs to continue exactly where the killed one stopped. */
export interface CheckpointState {
  /** Steps completed. */
  step: number;
  /** The run's seed; the samplers' generators are derived from it and the data position. */
  seed: number;
  /** The trainer's own generator state (`Rng.state`). */
  rngState: number;
  /** For each task, the position of the next batch in its sample stream. */
  positions: Record<string, StreamPosition>;
  /** Seconds of training so far, for throughput and ETA across resumes. */
  elapsedSeconds: number;
  /** The run's settings, so `--resume` can refuse a run that changed them. */
  config: Record<string, unknown>;
  /** For each task with trainable parts beyond its head, their names (written by `saveCheckpoint`). */
  extras?: Record<string, string[]>;
  /** The tasks with state not trained by gradients (written by `saveCheckpoint`). */
  stateful?: string[];
}

/** A checkpoint in memory. */
export interface Checkpoint {
  encoder: tf.LayersModel;
  heads: Record<string, tf.LayersModel>;
  /** Each task's trainable parts beyond its head, by part name. */
  extras: Record<string, Record<string, tf.LayersModel>>;
  /** Each stateful task's state tensors; the caller disposes them. */
  states: Record<string, tf.NamedTensorMap>;
  /** Optimizer slots in the order of the trainer's variable list; the caller disposes them. */
  optimizerWeights: NamedTensor[];
  state: CheckpointState;
}

/** A named optimizer slot, as `tf.Optimizer.getWeights` returns them. */
export type NamedTensor = Awaited<ReturnType<tf.Optimizer['getWeights']>>[number];

const OLD = '.old';

/**
 * Writes a checkpoint folder atomically: everything goes into a temporary sibling folder, which then replaces
 * the old checkpoint by two renames. A kill at any moment leaves either the old or the new checkpoint whole
 * (`loadCheckpoint` also looks at `<dir>.old`, the one window where only that exists).
 *
 * Layout: `encoder/`, `heads/<task>/` and `parts/<task>/<part>/` (standard tfjs `model.json` + `weights.bin`),
 * `states/<task>.json` + `.bin` (a task's state tensors), `optimizer.json` + `optimizer.bin` (tfjs weight specs and
 * bytes), `state.json`.
 */
export async function saveCheckpoint(
  dir: string,
  parts: {
    encoder: tf.LayersModel;
    parts: Record<string, TaskParts>;
    optimizer: tf.Optimizer;
    state: CheckpointState;
  },
): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await saveModel(parts.encoder, join(tmp, 'encoder'));
  const extras: Record<string, string[]> = {};
  const stateful: string[] = [];
  for (const [name, task] of Object.entries(parts.parts)) {
    await saveModel(task.head, join(tmp, 'heads', name));
    for (const [part, model] of Object.entries(task.extra ?? {}))
      await saveModel(model, join(tmp, 'parts', name, part));
    if (task.extra) extras[name] = Object.keys(task.extra);
    if (task.state) {
      await saveTensors(join(tmp, 'states', name), task.state.tensors());
      stateful.push(name);
    }
  }

  const slots = await parts.optimizer.getWeights();
  const { data, specs } = await tf.io.encodeWeights(slots);
  // getWeights returns the optimizer's live variables plus a fresh `iter` scalar: dispose only that one.
  tf.dispose(slots.filter((s) => s.name === 'iter').map((s) => s.tensor));
  await writeFileAtomic(join(tmp, 'optimizer.bin'), new Uint8Array(data));
  await writeFileAtomic(join(tmp, 'optimizer.json'), JSON.stringify(specs));
  await writeFileAtomic(join(tmp, 'state.json'), JSON.stringify({ ...parts.state, extras, stateful }, null, 2));

  await rm(dir + OLD, { recursive: true, force: true });
  if (existsSync(dir)) await rename(dir, dir + OLD);
  await rename(tmp, dir);
  await rm(dir + OLD, { recursive: true, force: true });
}

/** Whether a checkpoint (or the old one kept during a swap) exists at `dir`. */
export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, 'state.json')) || existsSync(join(dir + OLD, 'state.json'));
}

/** Reads a checkpoint written by `saveCheckpoint`. */
export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  const from = existsSync(join(dir, 'state.json')) ? dir : dir + OLD;
  if (!existsSync(join(from, 'state.json'))) {
    throw new ModelIOError(dir, 'no checkpoint here (state.json missing); run without --resume to start fresh');
  }
  try {
    const state = JSON.parse(await readFile(join(from, 'state.json'), 'utf8')) as CheckpointState;
    const encoder = await loadModel(join(from, 'encoder'));
    const heads: Record<string, tf.LayersModel> = {};
    for (const name of Object.keys(state.positions)) heads[name] = await loadModel(join(from, 'heads', name));
    const extras: Checkpoint['extras'] = {};
    for (const [name, partNames] of Object.entries(state.extras ?? {})) {
      extras[name] = {};
      for (const part of partNames) extras[name][part] = await loadModel(join(from, 'parts', name, part));
    }
    const states: Checkpoint['states'] = {};
    for (const name of state.stateful ?? []) states[name] = await loadTensors(join(from, 'states', name));
    const specs = JSON.parse(await readFile(join(from, 'optimizer.json'), 'utf8')) as tf.io.WeightsManifestEntry[];
    const bytes = await readFile(join(from, 'optimizer.bin'));
    const decoded = tf.io.decodeWeights(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
      specs,
    );
    const optimizerWeights = specs.map((spec) => ({ name: spec.name, tensor: decoded[spec.name]! }));
    return { encoder, heads, extras, states, optimizerWeights, state };
  } catch (error) {
    if (error instanceof ModelIOError) throw error;
    throw new ModelIOError(
      from,
      `checkpoint is unreadable (${(error as Error).message}); delete it or run without --resume`,
      { cause: error },
    );
  }
}

/** Writes named tensors as `<path>.json` (tfjs weight specs) and `<path>.bin` (their bytes). */
async function saveTensors(path: string, tensors: tf.NamedTensorMap): Promise<void> {
  const { data, specs } = await tf.io.encodeWeights(tensors);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFileAtomic(`${path}.bin`, new Uint8Array(data));
  await writeFileAtomic(`${path}.json`, JSON.stringify(specs));
}

/** Reads tensors written by `saveTensors`; the caller disposes them. */
async function loadTensors(path: string): Promise<tf.NamedTensorMap> {
  const specs = JSON.parse(await readFile(`${path}.json`, 'utf8')) as tf.io.WeightsManifestEntry[];
  const bytes = await readFile(`${path}.bin`);
  return tf.io.decodeWeights(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), specs);
}
