import { catchError, concat, defer, EMPTY, Observable, repeat, throwError, type OperatorFunction } from 'rxjs';
import { decodeFrames } from './decodeFrames.ts';
import { NoVideoStreamError, VideoDecodeError, VideoNotFoundError, type VideoError } from '../core/errors.ts';
import type { Frame } from './frame.ts';
import type { InputSpec } from './inputs.ts';
import { interleave } from './interleave.ts';
import { liveFrames, type LiveSourceOptions } from './liveSource.ts';
import { isStreamInput } from './probeVideo.ts';
import type { Rng } from '../core/rng.ts';
import { Valve } from '../core/valve.ts';
import { decodeOptionsOf, type FrameFormat } from './frameFormat.ts';

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
 * `videoMix` with `perSource` applied to each input's own frames before they are mixed: samplers go here, since
 * a window of frames must come from one video (interleaved frames of several videos would never form one).
 * `perSource` gets a generator forked for that input in a fixed order, so an epoch stays reproducible.
 */
export function videoMixBy<T>(
  inputs: readonly (string | InputSpec)[],
  format: FrameFormat,
  rng: Rng,
  valve: Valve | undefined,
  options: VideoSamplesOptions,
  perSource: (rng: Rng) => OperatorFunction<Frame, T>,
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
  const decode = (video: string, r: Rng, v?: Valve): Observable<T> =>
    defer(() => decodeFrames(video, { ...decodeOptionsOf(format), valve: v })).pipe(
      perSource(r),
      catchError(guard(video)),
    );
  const fileEpoch = (r: Rng, v?: Valve): Observable<T> => {
    const order = r.shuffle([...files]);
    const rngs = order.map(() => r.fork());
    if (order.length <= 1) return concat(...order.map((video, i) => decode(video, rngs[i]!, v)));
    const lanes = Math.min(options.lanes ?? 4, order.length);
    const valves = Array.from({ length: lanes }, () => new Valve());
    const sources = valves.map((laneValve, k) =>
      concat(
        ...order.flatMap((video, i) => (i % lanes === k ? [decode(video, rngs[i]!, bothOpen(laneValve, v))] : [])),
      ),
    );
    return interleave(sources, { rng: r.fork(), valves, bufferSize: options.bufferSize });
  };
  if (live.length === 0) return fileEpoch(rng, valve);
  const valves = [...live, ...(files.length ? ['files'] : [])].map(() => new Valve());
  const sources: Observable<T>[] = live.map((input, k) =>
    liveFrames(input, {
      ...options.live,
      ...decodeOptionsOf(format),
      valve: bothOpen(valves[k]!, valve),
    }).pipe(perSource(rng.fork()), catchError(guard(input))),
  );
  if (files.length)
    sources.push(defer(() => fileEpoch(rng.fork(), bothOpen(valves[live.length]!, valve))).pipe(repeat()));
  return sources.length === 1
    ? sources[0]!
    : interleave(sources, { rng: rng.fork(), valves, bufferSize: options.bufferSize });
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

/** A valve open only while both `a` and `b` (if given) are: a decoder pauses for its lane and for the consumer. */
function bothOpen(a: Valve, b: Valve | undefined): Valve {
  if (!b) return a;
  return new (class extends Valve {
    override get isOpen(): boolean {
      return a.isOpen && b.isOpen;
    }
    override onOpen(wake: () => void): () => void {
      let cancel = (): void => {};
      const check = (): void => {
        if (!a.isOpen) cancel = a.onOpen(check);
        else if (!b.isOpen) cancel = b.onOpen(check);
        else wake();
      };
      check();
      return () => cancel();
    }
  })();
}
