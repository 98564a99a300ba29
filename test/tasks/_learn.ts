import type * as tf from '@tensorflow/tfjs';
import { from } from 'rxjs';
import { buildFrameEncoder } from '../../models/frameEncoder.ts';
import type { Rng } from '../../core/rng.ts';
import { train, type TrainOptions, type TrainResult } from '../../training/trainer.ts';
import type { PretextTask } from '../../tasks/task.ts';

/** What a short training of one task on in-memory items logged. Test helper, not a test. */
export interface Learned {
  losses: number[];
  accuracies: number[];
  encoder: tf.LayersModel;
  result: TrainResult;
}

export const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Trains `task` alone on `items` (replayed every epoch) with a small wasm-friendly frame encoder of `size` x `size`,
 * or with `overrides.encoder` and `overrides.itemShape` (text tasks).
 */
export async function learn<Raw>(
  task: PretextTask<Raw>,
  items: readonly Raw[],
  size: number,
  overrides: Partial<TrainOptions> = {},
): Promise<Learned> {
  const losses: number[] = [];
  const accuracies: number[] = [];
  const encoder =
    overrides.encoder ??
    buildFrameEncoder({ inputShape: [size, size, 3], featureSize: 32, width: 8, blocks: 2, seed: 1 });
  const result = await train({
    encoder,
    itemShape: [size, size, 3],
    tasks: [
      {
        task: task as PretextTask<never>,
        samples: (_epoch, _valve, rng: Rng) => from(items).pipe(task.sampler({ rng })),
      },
    ],
    steps: 200,
    batchSize: 16,
    learningRate: 3e-3,
    seed: 4,
    onStep: (m) => (losses.push(m.tasks[task.name]!.loss), accuracies.push(m.tasks[task.name]!.accuracy)),
    ...overrides,
  });
  return { losses, accuracies, encoder, result };
}

/** Frees what `learn` made. */
export function dispose(learned: Learned): void {
  learned.encoder.dispose();
  Object.values(learned.result.heads).forEach((h) => h.dispose());
}
