import * as tf from '@tensorflow/tfjs';
import { DivergedError } from '../core/errors.ts';

/**
 * Throws {@link DivergedError} when a step's losses (`[total, loss_1, acc_1, ...]`, as the trainer reads them) or
 * any of `variables` hold NaN or an infinity, naming the step and what diverged. The trainer calls it before the
 * step is logged or checkpointed, so the last checkpoint written stays the last good one.
 *
 * Weights are checked with one fused reduction (`[n]` -> scalar per variable, read once), so the cost is one
 * small download a step.
 *
 * @example
 * checkFinite(step, numbers, run.variables, 1e-3); // throws "training diverged at step 7: loss NaN ..."
 */
export function checkFinite(
  step: number,
  losses: ArrayLike<number>,
  variables: readonly tf.Variable[],
  learningRate?: number,
): void {
  const bad = Array.from(losses).findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw new DivergedError(step, `${bad === 0 ? 'loss' : 'a task loss'} ${losses[bad]}`, learningRate);
  const name = firstNonFinite(variables);
  if (name !== undefined) throw new DivergedError(step, `weight ${name}`, learningRate);
}

/** The name of the first variable holding a NaN or an infinity, if any. */
export function firstNonFinite(variables: readonly tf.Variable[]): string | undefined {
  if (variables.length === 0) return undefined;
  // x - x is 0 for finite x and NaN for NaN and +-Infinity; the sum per variable carries any NaN through.
  const sums = tf.tidy(() => tf.stack(variables.map((v) => tf.sum(tf.sub(v, v)))).dataSync());
  const k = sums.findIndex((s) => s !== 0);
  return k < 0 ? undefined : variables[k]!.name;
}
