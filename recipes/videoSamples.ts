import { type Observable, EMPTY, concat, defer, from, takeUntil, tap, throwError } from 'rxjs';
import { NoSamplesError, TaskSamplesError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';
import type { Valve } from '../core/valve.ts';
import type { Frame } from '../pipeline/frame.ts';
import type { FrameFormat } from '../pipeline/frameFormat.ts';
import type { InputSpec } from '../pipeline/inputs.ts';
import { isStreamInput } from '../pipeline/probeVideo.ts';
import type { Sample } from '../pipeline/sample.ts';
import { type VideoSamplesOptions, videoMixBy, aborted } from '../pipeline/videoMix.ts';
import type { PretextTask, SamplerContext } from '../tasks/task.ts';

/** Options of `videoSamples`: how videos are read, and when a task that makes no samples fails. */
export interface VideoTaskSamplesOptions extends VideoSamplesOptions {
  /**
   * Samples per batch. A first pass over the files that gives fewer fails with a `TaskSamplesError` naming the task
   * (the trainer drops a short batch, so such a run would train nothing). Default 1: only a pass with no sample fails.
   */
  batchSize?: number;
  /**
   * Live inputs: frames read without a single sample before the run fails naming the task, rather than wait
   * forever for a task that cannot sample this stream. Default 3000 (two minutes at 25 fps).
   */
  maxFramesWithoutSample?: number;
}

/**
 * A task's samples over `inputs`: what `train` wants as `TrainTask.samples`. Files give one reproducible epoch
 * per call (`videoMixBy`: one sampler instance per video, all fed in one seeded order and sharing one store, so
 * tracking draws negatives from other videos); live inputs are consumed once, forever: the first epoch never ends
 * while they stream, and later epochs are empty.
 *
 * A task that cannot sample its inputs fails with a `TaskSamplesError` naming the task, the inputs and what it
 * needs: when its sampler is built, before any decoding, if the inputs cannot do (tracking with one video); at the
 * end of the first pass over the files if it gave fewer than `batchSize` samples (the trainer took no step then);
 * on a live input, after `maxFramesWithoutSample` frames without one.
 *
 * @example
 * const samples = videoSamples(TASKS.tracking, ['a.mp4', 'b.mp4'], { width: 64, height: 64 }, { batchSize: 16 });
 * samples(0, new Valve(), new Rng(1)).subscribe((sample) => console.log(sample.source));
 */
export function videoSamples(
  task: PretextTask<Frame>,
  inputs: readonly (string | InputSpec)[],
  format: FrameFormat,
  options: VideoTaskSamplesOptions = {},
) {
  const names = inputs.map((i) => (typeof i === 'string' ? i : i.input));
  const live = inputs.some((i) => (typeof i === 'string' ? isStreamInput(i) : i.live));
  const { batchSize = 1, maxFramesWithoutSample = 3000 } = options;
  let firstEpoch: number | undefined;
  let passes = 0;
  const epochOf = (rng: Rng, valve: Valve): Observable<Sample> =>
    defer(() => {
      const first = passes++ === 0;
      const shared = new Map<string, unknown>();
      const context = (r: Rng): SamplerContext => ({ rng: r, inputs: names, shared });
      // Built once before any frame is decoded: a task that cannot work with these inputs throws here.
      task.sampler(context(new Rng(0)));
      let frames = 0;
      let samples = 0;
      const countFrame = (): void => {
        frames++;
        if (live && samples === 0 && frames >= maxFramesWithoutSample) {
          throw new TaskSamplesError(
            task.name,
            names,
            `made no sample from ${frames} frames of its inputs`,
            'give inputs that suit the task (see README: video tasks) or choose another --tasks',
          );
        }
      };
      const epoch = videoMixBy(
        inputs,
        format,
        rng,
        valve,
        options,
        (r) => (source) => source.pipe(tap(countFrame), task.sampler(context(r))),
      ).pipe(tap(() => samples++));
      if (live || !first) return epoch;
      // Checked on the first pass only: once a pass has given batches, a later short one is the data's end.
      const checked = defer(() => {
        if (samples >= batchSize) return EMPTY;
        return throwError(() => emptyPassError(task.name, names, frames, samples, batchSize));
      });
      return concat(epoch, checked);
    });
  return (epoch: number, valve: Valve, rng: Rng): Observable<Sample> => {
    if (!live) return epochOf(rng, valve);
    firstEpoch ??= epoch;
    if (epoch !== firstEpoch) return EMPTY;
    const placeholder: Sample = { inputs: [], label: new Float32Array(0) };
    const skip = Array.from({ length: options.liveSkip ?? 0 }, () => placeholder);
    const live$ = epochOf(rng, valve);
    return concat(from(skip), options.signal ? live$.pipe(takeUntil(aborted(options.signal))) : live$);
  };
}

/** Why a first pass over files gave fewer samples than one batch: no frames at all, no sample, or too few. */
function emptyPassError(
  task: string,
  inputs: readonly string[],
  frames: number,
  samples: number,
  batchSize: number,
): NoSamplesError {
  // No frame at all is the inputs' fault, whatever the task.
  if (frames === 0) return new NoSamplesError(inputs, 'no frames decoded (nothing to train on)');
  if (samples === 0)
    return new TaskSamplesError(
      task,
      inputs,
      `made no sample in a whole pass over its inputs: no frames formed one (${frames} decoded)`,
      'give longer, moving videos or more of them (see README: video tasks)',
    );
  return new TaskSamplesError(
    task,
    inputs,
    `made ${samples} samples in a whole pass over its inputs (${frames} frames decoded), fewer than one batch of ${batchSize}`,
    'give longer videos or more of them, or a smaller --batch',
  );
}
