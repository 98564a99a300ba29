import { OptionError } from '../core/errors.ts';

/** How the learning rate moves over a run. */
export type LearningRateSchedule = 'constant' | 'cosine';

/** Options of {@link learningRateAt}. */
export interface ScheduleOptions {
  /** The peak learning rate (`--lr`). */
  base: number;
  /** 'constant' (default) or 'cosine': half a cosine from `base` down to 0 at the last step (Loshchilov & Hutter 2017, SGDR without restarts). */
  schedule?: LearningRateSchedule;
  /** Steps of linear warm-up from `base / warmupSteps` to `base` before the schedule starts (Goyal et al. 2017). Default 0. */
  warmupSteps?: number;
  /** The run's total steps (the cosine reaches 0 there). */
  totalSteps: number;
}

/**
 * The learning rate of step `step` (1-based, the step about to be taken), as solo-learn's and lightly's
 * `LinearWarmupCosineAnnealingLR`: linear warm-up over `warmupSteps`, then constant or half a cosine to 0 at
 * `totalSteps`. A function of the step alone, so a resumed run takes the same rates as an uninterrupted one.
 *
 * @example
 * learningRateAt(1, { base: 0.1, schedule: 'cosine', warmupSteps: 10, totalSteps: 100 }); // 0.01
 * learningRateAt(55, { base: 0.1, schedule: 'cosine', warmupSteps: 10, totalSteps: 100 }); // 0.05
 */
export function learningRateAt(step: number, options: ScheduleOptions): number {
  const { base, schedule = 'constant', warmupSteps = 0, totalSteps } = options;
  if (step <= warmupSteps) return (base * step) / warmupSteps;
  if (schedule === 'constant') return base;
  const span = Math.max(1, totalSteps - warmupSteps);
  const progress = Math.min(1, (step - warmupSteps) / span);
  return base * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/**
 * The factor `(1 - m_k) / (1 - m_base)` of an EMA momentum after step `step` of `totalSteps`: 1 for a constant
 * momentum; for BYOL's cosine schedule (Grill et al. 2020), `(cos(pi k / K) + 1) / 2`, which takes the momentum from
 * its base value at the start to 1 at the end (`m_k = 1 - (1 - m_base) * factor`).
 */
export function momentumFactorAt(step: number, schedule: LearningRateSchedule, totalSteps: number): number {
  if (schedule === 'constant') return 1;
  return (Math.cos((Math.PI * Math.min(step, totalSteps)) / Math.max(1, totalSteps)) + 1) / 2;
}

/** Checks a `--lr-schedule` / `--momentum-schedule` value. */
export function parseSchedule(flag: string, value: string): LearningRateSchedule {
  if (value === 'constant' || value === 'cosine') return value;
  throw new OptionError(flag, value, 'constant or cosine');
}
