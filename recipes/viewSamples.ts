import { map, pipe, type Observable } from 'rxjs';
import type { Rng } from '../core/rng.ts';
import type { Valve } from '../core/valve.ts';
import type { Frame } from '../pipeline/frame.ts';
import type { FrameFormat } from '../pipeline/frameFormat.ts';
import type { Sample } from '../pipeline/sample.ts';
import { viewGroupMix, type ViewGroup, type ViewGroupMixOptions } from '../pipeline/viewGroups.ts';
import type { PretextTask } from '../tasks/task.ts';

/**
 * A task's samples over synchronized recordings (`--views` groups, checked by `checkViewGroups`): what `train`
 * wants as `TrainTask.samples`. Each epoch replays every recording once, as moments of all its cameras
 * (`viewGroupMix`), reproducibly from the epoch's generator.
 *
 * @example
 * const groups = await checkViewGroups([['cam0.mp4', 'cam1.mp4']]);
 * train({ ..., tasks: [{ task, samples: viewSamples(taskReading('tcn', 'views'), groups, format) }] });
 */
export function viewSamples(
  task: PretextTask<readonly Frame[]>,
  groups: readonly ViewGroup[],
  format: FrameFormat,
  options: ViewGroupMixOptions = {},
) {
  return (_epoch: number, valve: Valve, rng: Rng): Observable<Sample> =>
    viewGroupMix(groups, format, rng, valve, options, (r) => task.sampler({ rng: r }));
}

/**
 * A task that reads moments of synchronized cameras, fed plain videos: each video is one camera, so each frame
 * becomes a one-camera moment (single-view TCN with `pretrain --video`).
 *
 * @example
 * videoSamples(singleCameraTask(taskReading('tcn', 'views')), ['clip.mp4'], format);
 */
export function singleCameraTask(task: PretextTask<readonly Frame[]>): PretextTask<Frame> {
  return {
    ...task,
    configure: (setup) => singleCameraTask(task.configure(setup)),
    sampler: (context) =>
      pipe(
        map((frame: Frame) => [frame]),
        task.sampler(context),
      ),
  };
}
