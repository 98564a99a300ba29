import * as tf from '@tensorflow/tfjs';
import { TempoError } from '../core/errors.ts';
import type { TaskParts } from '../tasks/task.ts';
import { type CheckpointState, loadCheckpoint } from './checkpoint.ts';

/**
 * Restores a run from the checkpoint in `dir`: the encoder, each task's parts and state, the optimizer's slots.
 * Refuses a checkpoint whose run settings (`config`) differ, or that lacks a part or state a task has now.
 */
export async function restore(
  dir: string,
  encoder: tf.LayersModel,
  parts: Record<string, TaskParts>,
  optimizer: tf.Optimizer,
  config: Record<string, unknown>,
): Promise<CheckpointState> {
  const saved = await loadCheckpoint(dir);
  try {
    // Both ways: a setting only written where it differs from its default (the optimizer) may be on either side.
    const changed = [...new Set([...Object.keys(config), ...Object.keys(saved.state.config)])].filter(
      (key) => JSON.stringify(config[key]) !== JSON.stringify(saved.state.config[key]),
    );
    if (changed.length > 0) {
      throw new TempoError(
        `cannot resume from ${dir}: the run's ${changed.join(', ')} changed since the checkpoint ` +
          `(was ${changed.map((k) => JSON.stringify(saved.state.config[k])).join(', ')}); use the same options or a new --out`,
      );
    }
    copyWeights(saved.encoder, encoder);
    for (const [name, p] of Object.entries(parts)) {
      copyWeights(saved.heads[name]!, p.head);
      for (const [part, model] of Object.entries(p.extra ?? {})) {
        const kept = saved.extras[name]?.[part];
        if (!kept) throw missingInCheckpoint(dir, `the part ${part} of the task ${name}`);
        copyWeights(kept, model);
      }
      if (p.state) {
        const kept = saved.states[name];
        if (!kept) throw missingInCheckpoint(dir, `the state of the task ${name}`);
        p.state.restore(kept);
      }
    }
    await optimizer.setWeights(saved.optimizerWeights);
    return saved.state;
  } finally {
    // setWeights copied the slots into the optimizer's own variables.
    tf.dispose(saved.optimizerWeights.map((w) => w.tensor));
    saved.encoder.dispose();
    Object.values(saved.heads).forEach((h) => h.dispose());
    Object.values(saved.extras).forEach((models) => Object.values(models).forEach((m) => m.dispose()));
    Object.values(saved.states).forEach((tensors) => tf.dispose(Object.values(tensors)));
  }
}

/** A checkpoint written by a version whose task had no such part or state cannot resume it exactly. */
export function missingInCheckpoint(dir: string, what: string): TempoError {
  return new TempoError(`cannot resume from ${dir}: it holds no ${what} (written by another version); use a new --out`);
}

export function copyWeights(from: tf.LayersModel, to: tf.LayersModel): void {
  to.setWeights(from.getWeights());
}
