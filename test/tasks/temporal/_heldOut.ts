import type * as tf from '@tensorflow/tfjs';
import { from } from 'rxjs';
import { Rng } from '../../../core/rng.ts';
import { metricOverBatches } from '../../../evaluation/pretextMetrics.ts';
import { buildFrameEncoder } from '../../../models/frameEncoder.ts';
import type { Frame } from '../../../pipeline/frame.ts';
import type { Sample } from '../../../pipeline/sample.ts';
import type { PretextTask } from '../../../tasks/task.ts';
import { train } from '../../../training/trainer.ts';

/** What a learning test measured on held-out samples. Test helper, not a test. */
export interface HeldOutScores {
  /** The task's metric on the held-out samples before training: the same encoder and head at their initial weights. */
  baseline: number;
  /** The same metric after training. */
  trained: number;
  /** Pretext metric of each training step. */
  accuracies: number[];
}

/**
 * Trains `task` alone on a fixed pool of samples (drawn once by its sampler, reshuffled every epoch, so the
 * sampler's cost is paid once) and scores its metric on `heldOut` samples before and after, in inference mode.
 * Every tensor made is disposed. Encoder: `size` x `size` frames, 2 blocks of width 8, 32 features.
 */
export async function scoreHeldOut(
  task: PretextTask<Frame>,
  pool: readonly Sample[],
  heldOut: readonly Sample[],
  size: number,
  options: { steps: number; learningRate?: number },
): Promise<HeldOutScores> {
  const shape = [size, size, 3];
  const batches: Sample[][] = [];
  for (let i = 0; i < heldOut.length; i += 32) batches.push(heldOut.slice(i, i + 32));
  const encoder = buildFrameEncoder({ inputShape: [size, size, 3], featureSize: 32, width: 8, blocks: 2, seed: 1 });
  const seed = 4;
  // The trainer builds the task's parts from `new Rng(seed)`: the same initial head as the trained one starts from.
  const initial = task.build(encoder, new Rng(seed));
  const baseline = await metricOverBatches(task, encoder, initial, batches, shape);
  disposeParts(initial);
  const accuracies: number[] = [];
  const result = await train({
    encoder,
    itemShape: shape,
    tasks: [{ task: task as PretextTask<never>, samples: (_epoch, _valve, rng) => from(rng.shuffle([...pool])) }],
    steps: options.steps,
    batchSize: 16,
    learningRate: options.learningRate ?? 3e-3,
    seed,
    onStep: (m) => accuracies.push(m.tasks[task.name]!.accuracy),
  });
  const trained = await metricOverBatches(task, encoder, result.parts[task.name]!, batches, shape);
  Object.values(result.parts).forEach(disposeParts);
  encoder.dispose();
  return { baseline: baseline.accuracy, trained: trained.accuracy, accuracies };
}

function disposeParts(parts: { head: tf.LayersModel; state?: { dispose(): void } }): void {
  parts.head.dispose();
  parts.state?.dispose();
}

/** Fraction of triplets whose anchor is nearer its positive than its negative by `embed` (a fixed feature map). */
export function rankedRight(samples: readonly Sample[], embed: (x: Float32Array) => number[]): number {
  const distance = (a: number[], b: number[]) => a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0);
  const right = samples.filter((s) => {
    const [a, p, n] = s.inputs.slice(0, 3).map(embed);
    return distance(a!, p!) < distance(a!, n!);
  });
  return right.length / samples.length;
}

/** A frame's mean colour `[r, g, b]`: the "colour alone" feature a learning test must not be passable by. */
export function meanColour(x: Float32Array): number[] {
  const sum = [0, 0, 0];
  for (let i = 0; i < x.length; i++) sum[i % 3]! += x[i]!;
  return sum.map((v) => v / (x.length / 3));
}
