import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { StepMetrics } from '../../training/stepMetrics.ts';

/** One point of a curve: the step, the value, and its exponential moving average up to that step. */
export interface CurvePoint {
  step: number;
  value: number;
  smoothed: number;
}

/** One curve of a run, e.g. `order / loss`, `lr`, `samples/s`. */
export interface Curve {
  /** What it plots: `loss (total)`, `<task> / loss`, `<task> / accuracy`, `<task> / embeddingStd`, `lr`, ... */
  title: string;
  /** Group in the report: `run` (total loss, samples/s, lr, knnAccuracy) or a task name. */
  group: string;
  points: CurvePoint[];
}

/**
 * A metrics line as read: the trainer's `StepMetrics` (`lr` missing in runs logged before it was recorded), plus
 * any key a hook adds.
 */
export type MetricsLine = Omit<StepMetrics, 'lr'> & { lr?: number } & Record<string, unknown>;

/**
 * Reads `metrics.jsonl`. A line cut short by a kill (the last one, mid-write) is skipped, as the trainer's
 * `trimMetrics` does. A missing file gives no lines.
 */
export async function readMetrics(path: string): Promise<MetricsLine[]> {
  if (!existsSync(path)) return [];
  const lines: MetricsLine[] = [];
  for (const text of (await readFile(path, 'utf8')).split('\n')) {
    if (!text.trim()) continue;
    try {
      const line = JSON.parse(text) as MetricsLine;
      if (typeof line.step === 'number') lines.push(line);
    } catch {
      // A partial last line.
    }
  }
  return lines;
}

/**
 * The exponential moving average TensorBoard's smoothing slider draws, debiased so that the first points are not
 * pulled towards 0: `ema_t = w ema_{t-1} + (1 - w) x_t`, divided by `1 - w^t`.
 */
export function smooth(values: readonly number[], weight: number): number[] {
  let ema = 0;
  return values.map((value, t) => {
    ema = weight * ema + (1 - weight) * value;
    return weight === 0 ? value : ema / (1 - weight ** (t + 1));
  });
}

/**
 * The run's curves from its metrics lines: the total loss, samples/s, and every top-level number other hooks log
 * (`lr`, `knnAccuracy`, ...) in the `run` group; each task's loss, accuracy and monitors (`embeddingStd`) in the
 * task's group. A key logged on some steps only (a monitor run every K steps) gives a curve of those steps.
 * `smoothing` is the moving-average weight (0 = raw).
 */
export function curvesOf(lines: readonly MetricsLine[], smoothing = 0.6): Curve[] {
  const series = new Map<string, { group: string; steps: number[]; values: number[] }>();
  const add = (title: string, group: string, step: number, value: unknown): void => {
    if (typeof value !== 'number' || !Number.isFinite(value)) return;
    const s = series.get(title) ?? { group, steps: [], values: [] };
    series.set(title, s);
    s.steps.push(step);
    s.values.push(value);
  };
  const skipped = new Set(['step', 'tasks', 'elapsedSeconds']);
  for (const line of lines) {
    add('loss (total)', 'run', line.step, line.loss);
    add('samples/s', 'run', line.step, line.samplesPerSecond);
    for (const [key, value] of Object.entries(line)) {
      if (!skipped.has(key) && key !== 'loss' && key !== 'samplesPerSecond') add(key, 'run', line.step, value);
    }
    for (const [task, figures] of Object.entries(line.tasks ?? {})) {
      for (const [key, value] of Object.entries(figures)) add(`${task} / ${key}`, task, line.step, value);
    }
  }
  return [...series.entries()].map(([title, s]) => {
    const smoothed = smooth(s.values, smoothing);
    return {
      title,
      group: s.group,
      points: s.steps.map((step, k) => ({ step, value: s.values[k]!, smoothed: smoothed[k]! })),
    };
  });
}
