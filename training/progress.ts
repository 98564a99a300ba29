import cliProgress from 'cli-progress';
import type { StepMetrics } from './stepMetrics.ts';

/** How training progress is shown: a live bar, plain log lines, nothing, or bar-on-a-TTY-else-lines. */
export type ProgressMode = 'auto' | 'bar' | 'lines' | 'none';

/** A progress display for a run of `total` steps starting at `start`. */
export interface Progress {
  update(step: number, metrics: StepMetrics): void;
  stop(): void;
}

/**
 * A bar with loss, accuracy, samples/s and ETA on a TTY (cli-progress), or one plain line about every
 * twentieth of the run otherwise, so logs of a CI job or a redirected run stay readable.
 */
export function createProgress(mode: ProgressMode, total: number, start: number): Progress {
  const resolved = mode === 'auto' ? (process.stderr.isTTY ? 'bar' : 'lines') : mode;
  if (resolved === 'none') return { update() {}, stop() {} };
  // The last kNN monitor score stays on the line until the next one.
  let knn: number | undefined;
  const remember = (m: StepMetrics): void => void (knn = m.knnAccuracy ?? knn);
  if (resolved === 'lines') {
    const every = Math.max(1, Math.round(total / 20));
    const began = performance.now();
    return {
      update(step, m) {
        remember(m);
        if (step % every !== 0 && step !== total) return;
        const rate = (step - start) / ((performance.now() - began) / 1000);
        const eta = rate > 0 ? Math.round((total - step) / rate) : 0;
        process.stderr.write(
          `step ${step}/${total}  loss ${m.loss.toFixed(4)}  ${formatTasks(m, knn)}  ${m.samplesPerSecond.toFixed(0)} samples/s  eta ${eta}s\n`,
        );
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: 'step {value}/{total} [{bar}] loss {loss} {tasks} | {rate} samples/s | eta {eta_formatted}',
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, start, { loss: '-', tasks: '', rate: '-' });
  return {
    update(step, m) {
      remember(m);
      bar.update(step, { loss: m.loss.toFixed(4), tasks: formatTasks(m, knn), rate: m.samplesPerSecond.toFixed(0) });
    },
    stop() {
      bar.stop();
    },
  };
}

function formatTasks(m: StepMetrics, knn: number | undefined): string {
  const tasks = Object.entries(m.tasks).map(([name, t]) => `${name} acc ${t.accuracy.toFixed(2)}`);
  if (knn !== undefined) tasks.push(`knn ${knn.toFixed(3)}`);
  return tasks.join('  ');
}
