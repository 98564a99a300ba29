import { catchError, concat, defer, EMPTY, type Observable, type OperatorFunction, throwError } from 'rxjs';
import { NoVideoStreamError, OptionError, VideoDecodeError, VideoNotFoundError } from '../core/errors.ts';
import type { Rng } from '../core/rng.ts';
import { Valve, bothOpen } from '../core/valve.ts';
import { decodeFrames } from './decodeFrames.ts';
import type { Frame } from './frame.ts';
import { decodeOptionsOf, type FrameFormat } from './frameFormat.ts';
import { interleave } from './interleave.ts';
import { alignViews } from './multiView.ts';
import { isStreamInput, probeVideo, type VideoInfo } from './probeVideo.ts';
import type { VideoSamplesOptions } from './videoMix.ts';

/** One synchronized recording: its camera files, checked by `checkViewGroups`, and the rate they are decoded at. */
export interface ViewGroup {
  /** The camera files, in the order given. */
  readonly files: readonly string[];
  /** Frames per second every camera is resampled to, so that their frames meet at the same instants. */
  readonly fps: number;
}

/** Options of `checkViewGroups`. */
export interface CheckViewGroupsOptions {
  /** The run's frame rate (`--fps`); default: the lowest rate among a group's cameras. */
  fps?: number;
  /** 'fail' (default): a camera file that cannot be read stops with its error; 'skip': its group is left out and reported. */
  badInputs?: VideoSamplesOptions['badInputs'];
  onBadInput?: VideoSamplesOptions['onBadInput'];
}

/** Shortest over longest camera duration below which a group is refused as not one recording. */
const LEAST_DURATION_RATIO = 0.5;

/**
 * Checks groups of synchronized camera files (`--views cam1.mp4,cam2.mp4`, one group per recording) before a run
 * starts, so that a bad group fails at once with one line naming it and the fix: a group needs two or more distinct
 * files (live streams cannot be aligned); each file must be a readable video (probed); all cameras are resampled to
 * one rate, the run's `fps` or else the lowest of the group (so cameras at 30 and 25 fps meet at 25 instants a
 * second), and a camera whose container states no rate needs `fps`; cameras of very different lengths (the shortest
 * under half the longest) are not one recording. Resolutions may differ: frames are scaled to the run's format.
 *
 * @throws OptionError for a group of one file, a repeated file, a live input, a missing rate or unequal lengths;
 *   VideoNotFoundError, NoVideoStreamError or VideoDecodeError for a camera that cannot be read.
 * @example
 * const groups = await checkViewGroups([['rec1/cam0.mp4', 'rec1/cam1.mp4']]); // [{ files, fps: 12 }]
 */
export async function checkViewGroups(
  groups: readonly (readonly string[])[],
  options: CheckViewGroupsOptions = {},
): Promise<ViewGroup[]> {
  if (groups.length === 0)
    throw new OptionError('--views', [], 'one or more groups of synchronized camera files, e.g. --views a.mp4,b.mp4');
  if (options.fps !== undefined && !(options.fps > 0 && Number.isFinite(options.fps)))
    throw new OptionError('--fps', options.fps, 'a positive number of frames per second');
  for (const files of groups) checkGroupFiles(files);
  const checked: ViewGroup[] = [];
  for (const files of groups) {
    let infos: VideoInfo[];
    try {
      infos = [];
      for (const file of files) infos.push(await probeVideo(file));
    } catch (error) {
      if (options.badInputs === 'skip' && isBadVideo(error)) {
        options.onBadInput?.(error.input, error);
        continue;
      }
      throw error;
    }
    checkDurations(files, infos);
    checked.push({ files: [...files], fps: options.fps ?? commonRate(files, infos) });
  }
  return checked;
}

function checkGroupFiles(files: readonly string[]): void {
  const shown = files.join(',');
  if (files.length < 2) {
    throw new OptionError(
      '--views',
      shown,
      'two or more synchronized camera files of one recording, separated by commas, e.g. --views cam1.mp4,cam2.mp4 (a single video goes to --video)',
    );
  }
  const live = files.find(isStreamInput);
  if (live !== undefined) {
    throw new OptionError(
      '--views',
      live,
      'video files: a live stream (URL or -) cannot be put in time with other cameras (record each camera to a file first)',
    );
  }
  const repeated = files.find((file, i) => files.indexOf(file) !== i);
  if (repeated !== undefined)
    throw new OptionError('--views', shown, `distinct camera files (${repeated} is given twice in one group)`);
}

function checkDurations(files: readonly string[], infos: readonly VideoInfo[]): void {
  const known = infos.filter((info) => info.duration !== undefined);
  if (known.length < 2) return;
  const shortest = known.reduce((a, b) => (b.duration! < a.duration! ? b : a));
  const longest = known.reduce((a, b) => (b.duration! > a.duration! ? b : a));
  if (shortest.duration! >= LEAST_DURATION_RATIO * longest.duration!) return;
  throw new OptionError(
    '--views',
    files.join(','),
    `the cameras of one synchronized recording, of about one length (${shortest.input} lasts ` +
      `${shortest.duration!.toFixed(1)} s, ${longest.input} ${longest.duration!.toFixed(1)} s): trim them to the ` +
      'span they share (e.g. ffmpeg -ss START -t SECONDS), or give each recording its own --views',
  );
}

function commonRate(files: readonly string[], infos: readonly VideoInfo[]): number {
  const unknown = infos.find((info) => info.fps === undefined);
  if (unknown) {
    throw new OptionError(
      '--fps',
      undefined,
      `a frame rate to resample the cameras of --views ${files.join(',')} to (${unknown.input} states none), e.g. --fps 10`,
    );
  }
  return Math.min(...infos.map((info) => info.fps!));
}

function isBadVideo(error: unknown): error is VideoNotFoundError | VideoDecodeError | NoVideoStreamError {
  return (
    error instanceof VideoNotFoundError || error instanceof VideoDecodeError || error instanceof NoVideoStreamError
  );
}

/**
 * The moments of one recording: every camera decoded at the group's rate in `format` (scaled to its size), aligned
 * by `alignViews` into `[frame of camera 0, ..., frame of camera N-1]` tuples of one instant (tolerance half a
 * frame interval). The cameras decode side by side, each paused by its own valve while it runs ahead of the others
 * and by `valve` while the consumer is full. Ends when the shortest camera ends; a camera's error ends it too.
 *
 * @example
 * decodeViewGroup({ files: ['cam0.mp4', 'cam1.mp4'], fps: 12 }, { width: 64, height: 64 }); // Observable<Frame[]>
 */
export function decodeViewGroup(group: ViewGroup, format: FrameFormat, valve?: Valve): Observable<Frame[]> {
  return defer(() => {
    const valves = group.files.map(() => new Valve());
    const decode = { ...decodeOptionsOf({ ...format, fps: group.fps }) };
    const cameras = group.files.map((file, i) =>
      defer(() => decodeFrames(file, { ...decode, valve: bothOpen(valves[i]!, valve) })),
    );
    return alignViews(cameras, { tolerance: 0.5 / group.fps, valves, bufferSize: 32 });
  });
}

/** Options of `viewGroupMix`. */
export interface ViewGroupMixOptions extends Pick<VideoSamplesOptions, 'badInputs' | 'onBadInput' | 'bufferSize'> {
  /** Recordings decoded at once and interleaved (each with all its cameras). Default 2. */
  lanes?: number;
}

/**
 * One epoch over recordings, as `videoMixBy` over videos: the groups in an order shuffled by `rng`, each decoded
 * (`decodeViewGroup`) and passed through `perGroup` (a sampler: triplets must come from one recording), split over
 * `lanes` and mixed by the seeded `interleave`. The same generator state gives the same epoch. With `badInputs:
 * 'skip'` a recording whose camera fails to decode is left out and reported to `onBadInput`.
 *
 * @example
 * viewGroupMix(groups, { width: 64, height: 64 }, new Rng(1), valve, {}, (r) => task.sampler({ rng: r }));
 */
export function viewGroupMix<T>(
  groups: readonly ViewGroup[],
  format: FrameFormat,
  rng: Rng,
  valve: Valve | undefined,
  options: ViewGroupMixOptions,
  perGroup: (rng: Rng) => OperatorFunction<Frame[], T>,
): Observable<T> {
  const order = rng.shuffle([...groups]);
  const rngs = order.map(() => rng.fork());
  const decode = (group: ViewGroup, r: Rng, v?: Valve): Observable<T> =>
    decodeViewGroup(group, format, v).pipe(
      perGroup(r),
      catchError((error: unknown) => {
        if (options.badInputs !== 'skip' || !isBadVideo(error)) return throwError(() => error);
        options.onBadInput?.(error.input, error);
        return EMPTY;
      }),
    );
  if (order.length <= 1) return concat(...order.map((group, i) => decode(group, rngs[i]!, valve)));
  const lanes = Math.min(options.lanes ?? 2, order.length);
  const valves = Array.from({ length: lanes }, () => new Valve());
  const sources = valves.map((laneValve, k) =>
    concat(
      ...order.flatMap((group, i) => (i % lanes === k ? [decode(group, rngs[i]!, bothOpen(laneValve, valve))] : [])),
    ),
  );
  return interleave(sources, { rng: rng.fork(), valves, bufferSize: options.bufferSize });
}
