import { type Observable, EMPTY, concat, from, takeUntil } from 'rxjs';
import type { Rng } from '../core/rng.ts';
import type { Valve } from '../core/valve.ts';
import type { Frame } from '../pipeline/frame.ts';
import type { FrameFormat } from '../pipeline/frameFormat.ts';
import type { InputSpec } from '../pipeline/inputs.ts';
import { isStreamInput } from '../pipeline/probeVideo.ts';
import type { Sample } from '../pipeline/sample.ts';
import { type VideoSamplesOptions, videoMixBy, aborted } from '../pipeline/videoMix.ts';
import type { PretextTask } from '../tasks/task.ts';

/**
 * A task's samples over `inputs`: what `train` wants as `TrainTask.samples`. Files give one reproducible epoch
 * per call (`videoMix`); live inputs are consumed once, forever: the first epoch never ends while they stream,
 * and later epochs are empty.
 */

export function videoSamples(
  task: PretextTask<Frame>,
  inputs: readonly (string | InputSpec)[],
  format: FrameFormat,
  options: VideoSamplesOptions = {},
) {
  const live = inputs.some((i) => (typeof i === 'string' ? isStreamInput(i) : i.live));
  let firstEpoch: number | undefined;
  return (epoch: number, valve: Valve, rng: Rng): Observable<Sample> => {
    const sample = (r: Rng) => task.sampler({ rng: r });
    if (!live) return videoMixBy(inputs, format, rng, valve, options, sample);
    firstEpoch ??= epoch;
    if (epoch !== firstEpoch) return EMPTY;
    const placeholder: Sample = { inputs: [], label: new Float32Array(0) };
    const skip = Array.from({ length: options.liveSkip ?? 0 }, () => placeholder);
    const live$ = videoMixBy(inputs, format, rng, valve, options, sample);
    return concat(from(skip), options.signal ? live$.pipe(takeUntil(aborted(options.signal))) : live$);
  };
}
