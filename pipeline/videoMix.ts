import {
  catchError,
  concat,
  defer,
  EMPTY,
  map,
  Observable,
  of,
  repeat,
  Subject,
  throwError,
  type OperatorFunction,
  type Subscription,
} from 'rxjs';
import { decodeFrames, type DecodeOptions } from './decodeFrames.ts';
import { NoVideoStreamError, VideoDecodeError, VideoNotFoundError, type VideoError } from '../core/errors.ts';
import type { Frame } from './frame.ts';
import type { InputSpec } from './inputs.ts';
import { roundRobin } from './interleave.ts';
import { operate } from '../core/operate.ts';
import { shuffleBuffer } from '../core/shuffleBuffer.ts';
import { liveFrames, type LiveSourceOptions } from './liveSource.ts';
import { isStreamInput } from './probeVideo.ts';
import type { Rng } from '../core/rng.ts';
import { Valve, bothOpen } from '../core/valve.ts';
import { decodeOptionsOf, type FrameFormat } from './frameFormat.ts';
import type { FrameCache } from './frameCache.ts';

/**
 * One epoch of frames from several videos: the videos in an order shuffled by `rng`, each decoded in turn
 * (one ffmpeg at a time), pausing on `valve`. The same generator state gives the same epoch.
 */
export function videoEpoch(videos: readonly string[], format: FrameFormat, rng: Rng, valve?: Valve): Observable<Frame> {
  const order = rng.shuffle([...videos]);
  return concat(...order.map((video) => defer(() => decodeFrames(video, { ...decodeOptionsOf(format), valve }))));
}

/** Options of `videoSamples` and `videoMix`. */
export interface VideoSamplesOptions {
  /** 'fail' (default): a video that errors ends the stream with its error; 'skip': it is left out and reported to `onBadInput`. */
  badInputs?: 'skip' | 'fail';
  /** With `badInputs: 'skip'`, called each time an input fails (a bad file fails in every epoch). */
  onBadInput?: (input: string, error: VideoError) => void;
  /** Files decoded at once and interleaved (each lane plays its share of the shuffled files in turn). Default 4. */
  lanes?: number;
  /** Items in the interleave's shuffle buffer. Default 256. */
  bufferSize?: number;
  /** Reconnect and stall settings for live inputs (URLs, stdin). */
  live?: Pick<
    LiveSourceOptions,
    'maxReconnects' | 'reconnectDelayMs' | 'maxReconnectDelayMs' | 'stallTimeoutMs' | 'onReconnect'
  >;
  /** When aborted, live streams complete (rather than wait for a frame that may not come, e.g. while reconnecting). */
  signal?: AbortSignal;
  /** Decoded frames kept in memory for later epochs (files only); absent: every epoch runs ffmpeg again. */
  frameCache?: FrameCache;
  /** Live runs only: items to pass over (as cheap placeholders) before live data, so a resumed trainer's skip costs no frames. */
  liveSkip?: number;
}

/**
 * One epoch of frames from inputs: with one file, that file; with several, the files in an order shuffled by
 * `rng`, split over `lanes` decoders and mixed by the seeded `interleave` (so a bounded buffer mixes videos and
 * the same generator state gives the same epoch, which `--resume` relies on). With live inputs (URLs, stdin) the
 * epoch is the live streams, read once and kept alive by `liveFrames`, mixed with the files replayed endlessly.
 */
export function videoMix(
  inputs: readonly (string | InputSpec)[],
  format: FrameFormat,
  rng: Rng,
  valve?: Valve,
  options: VideoSamplesOptions = {},
): Observable<Frame> {
  return videoMixBy(inputs, format, rng, valve, options, () => (frames) => frames);
}

/**
 * `videoMix` with `perSource` applied to each input's own frames, in that input's order, before the outputs are
 * mixed: samplers go here, since a window of frames must come from one video (interleaved frames of several videos
 * would never form one). `perSource` gets the input and a generator forked for it in a fixed order.
 *
 * Every instance runs in one deterministic sequence: the decoders' frames are taken in a seeded round-robin
 * (`roundRobin`, whose order does not depend on timing), each frame goes to its input's instance
 * (`samplePerSource`), and only the instances' outputs pass the shuffle buffer. So instances may share state (a
 * bank of other videos' patches, see `SamplerContext.shared`) and still give the same epoch for the same generator
 * state, however fast each ffmpeg runs, which `--resume` relies on.
 */
export function videoMixBy<T>(
  inputs: readonly (string | InputSpec)[],
  format: FrameFormat,
  rng: Rng,
  valve: Valve | undefined,
  options: VideoSamplesOptions,
  perSource: (rng: Rng, input: string) => OperatorFunction<Frame, T>,
): Observable<T> {
  const specs = inputs.map((i): InputSpec =>
    typeof i === 'string' ? { input: i, kind: isStreamInput(i) ? 'url' : 'file', live: isStreamInput(i) } : i,
  );
  const files = specs.filter((s) => !s.live).map((s) => s.input);
  const live = specs.filter((s) => s.live).map((s) => s.input);
  const guard =
    (input: string) =>
    (error: unknown): Observable<never> => {
      if (
        options.badInputs !== 'skip' ||
        !(
          error instanceof VideoNotFoundError ||
          error instanceof VideoDecodeError ||
          error instanceof NoVideoStreamError
        )
      ) {
        return throwError(() => error);
      }
      options.onBadInput?.(input, error);
      return EMPTY;
    };
  // One input's frames, each tagged with the input's run, then the run's end (so its sampler completes and frees
  // its window while other inputs go on).
  const tagged = (run: SourceRun, frames: Observable<Frame>): Observable<SourceFrame> =>
    concat(
      frames.pipe(
        catchError(guard(run.input)),
        map((frame): SourceFrame => ({ run, frame })),
      ),
      of<SourceFrame>({ run }),
    );
  const decode = (run: SourceRun, v?: Valve): Observable<SourceFrame> =>
    tagged(
      run,
      defer(() => decodeFile(run.input, { ...decodeOptionsOf(format), valve: v }, options.frameCache)),
    );
  // The files of one epoch in an order shuffled by `r`, split over lanes taken in turn; and the generator of the
  // shuffle that mixes their samples (none for one file, whose samples keep their order).
  const fileEpoch = (r: Rng, v?: Valve): { frames: Observable<SourceFrame>; shuffle?: Rng } => {
    const order = r.shuffle([...files]);
    const runs = order.map((input): SourceRun => ({ input, rng: r.fork() }));
    if (runs.length <= 1) return { frames: concat(...runs.map((run) => decode(run, v))) };
    const lanes = Math.min(options.lanes ?? 4, runs.length);
    const valves = Array.from({ length: lanes }, () => new Valve());
    const sources = valves.map((laneValve, k) =>
      concat(...runs.filter((_, i) => i % lanes === k).map((run) => decode(run, bothOpen(laneValve, v)))),
    );
    return { frames: roundRobin(sources, { valves }), shuffle: r.fork() };
  };
  const mixed = (frames: Observable<SourceFrame>, shuffle: Rng | undefined): Observable<T> => {
    const samples = frames.pipe(samplePerSource(perSource));
    return shuffle ? samples.pipe(shuffleBuffer<T>({ rng: shuffle, bufferSize: options.bufferSize ?? 256 })) : samples;
  };
  if (live.length === 0) {
    const epoch = fileEpoch(rng, valve);
    return mixed(epoch.frames, epoch.shuffle);
  }
  const valves = [...live, ...(files.length ? ['files'] : [])].map(() => new Valve());
  const sources: Observable<SourceFrame>[] = live.map((input, k) =>
    tagged(
      { input, rng: rng.fork() },
      liveFrames(input, { ...options.live, ...decodeOptionsOf(format), valve: bothOpen(valves[k]!, valve) }),
    ),
  );
  if (files.length)
    sources.push(defer(() => fileEpoch(rng.fork(), bothOpen(valves[live.length]!, valve)).frames).pipe(repeat()));
  return sources.length === 1 ? mixed(sources[0]!, undefined) : mixed(roundRobin(sources, { valves }), rng.fork());
}

/** One sampler instance of an epoch: an input and the generator forked for it. */
export interface SourceRun {
  readonly input: string;
  readonly rng: Rng;
}

/** A frame of a run, or (without `frame`) the end of that run's frames. */
export interface SourceFrame {
  readonly run: SourceRun;
  readonly frame?: Frame;
}

/**
 * Feeds each run's frames to its own instance of `perSource` (made at the run's first item, completed at its end)
 * and emits what the instances emit, in the order the frames came. The instances run one at a time in the input's
 * order, so state they share sees the same sequence on every run with the same input (for synchronous operators,
 * as samplers are; one that delays its output would emit in timing order). Memory: one instance per run not yet
 * ended (a lane holds one at a time).
 *
 * @example
 * roundRobin(lanes).pipe(samplePerSource((rng) => sampleFrameOrder({ rng })));
 */
export function samplePerSource<T>(
  perSource: (rng: Rng, input: string) => OperatorFunction<Frame, T>,
): OperatorFunction<SourceFrame, T> {
  return operate<SourceFrame, T>((subscriber) => {
    let open = new Map<SourceRun, { frames: Subject<Frame>; subscription: Subscription }>();
    const start = (run: SourceRun) => {
      const frames = new Subject<Frame>();
      const subscription = frames.pipe(perSource(run.rng, run.input)).subscribe({
        next: (item) => subscriber.next(item),
        error: (error: unknown) => subscriber.error(error),
      });
      const instance = { frames, subscription };
      open.set(run, instance);
      return instance;
    };
    const next = ({ run, frame }: SourceFrame): void => {
      const instance = open.get(run) ?? start(run);
      if (frame) instance.frames.next(frame);
      else {
        open.delete(run);
        instance.frames.complete();
      }
    };
    const complete = (): void => {
      for (const [run, instance] of open) {
        open.delete(run);
        instance.frames.complete();
      }
    };
    const finalize = (): void => {
      for (const instance of open.values()) instance.subscription.unsubscribe();
      open = new Map();
    };
    return { next, complete, finalize };
  });
}

/** Emits once when `signal` aborts (at once if it already has). */
export function aborted(signal: AbortSignal): Observable<void> {
  return new Observable<void>((subscriber) => {
    const fire = () => subscriber.next();
    if (signal.aborted) fire();
    else signal.addEventListener('abort', fire, { once: true });
    return () => signal.removeEventListener('abort', fire);
  });
}

/** `decodeFrames`, through `cache` when there is one. */
function decodeFile(input: string, options: DecodeOptions, cache: FrameCache | undefined): Observable<Frame> {
  return cache ? cache.decode(input, options) : decodeFrames(input, options);
}
