import * as tf from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { bufferCount, catchError, concat, defer, EMPTY, filter, firstValueFrom, from, Observable, repeat, takeUntil, throwError, toArray, type OperatorFunction } from 'rxjs';
import type { PretextTask, Sample } from '../tasks/task.ts';
import { collate, disposeBatch } from './batchSamples.ts';
import { decodeFrames } from './decodeFrames.ts';
import { DataFormatError, NoVideoStreamError, VideoDecodeError, VideoNotFoundError, type VideoError } from './errors.ts';
import { frameToFloat, type Frame } from './frame.ts';
import type { LabelledItems } from './linearProbe.ts';
import type { InputSpec } from './inputs.ts';
import { interleave } from './interleave.ts';
import { liveFrames, type LiveSourceOptions } from './liveSource.ts';
import { isStreamInput } from './probeVideo.ts';
import { Rng } from './rng.ts';
import { Valve } from './valve.ts';

/** How frames are decoded for training and evaluation. */
export interface FrameFormat {
  width: number;
  height: number;
  /** Resample to this rate; default: every source frame. */
  fps?: number;
  gray?: boolean;
}

/** The `[height, width, channels]` shape of frames in `format`. */
export function frameShape(format: FrameFormat): [number, number, number] {
  return [format.height, format.width, format.gray ? 1 : 3];
}

/**
 * One epoch of frames from several videos: the videos in an order shuffled by `rng`, each decoded in turn
 * (one ffmpeg at a time), pausing on `valve`. The same generator state gives the same epoch.
 */
export function videoEpoch(videos: readonly string[], format: FrameFormat, rng: Rng, valve?: Valve): Observable<Frame> {
  const order = rng.shuffle([...videos]);
  return concat(
    ...order.map((video) =>
      defer(() => decodeFrames(video, { width: format.width, height: format.height, fps: format.fps, pixelFormat: format.gray ? 'gray' : 'rgb', valve })),
    ),
  );
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
  live?: Pick<LiveSourceOptions, 'maxReconnects' | 'reconnectDelayMs' | 'maxReconnectDelayMs' | 'stallTimeoutMs' | 'onReconnect'>;
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
export function videoMix(inputs: readonly (string | InputSpec)[], format: FrameFormat, rng: Rng, valve?: Valve, options: VideoSamplesOptions = {}): Observable<Frame> {
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
  const specs = inputs.map((i): InputSpec => (typeof i === 'string' ? { input: i, kind: isStreamInput(i) ? 'url' : 'file', live: isStreamInput(i) } : i));
  const files = specs.filter((s) => !s.live).map((s) => s.input);
  const live = specs.filter((s) => s.live).map((s) => s.input);
  const guard = (input: string) => (error: unknown): Observable<never> => {
    if (options.badInputs !== 'skip' || !(error instanceof VideoNotFoundError || error instanceof VideoDecodeError || error instanceof NoVideoStreamError)) {
      return throwError(() => error);
    }
    options.onBadInput?.(input, error);
    return EMPTY;
  };
  const decode = (video: string, r: Rng, v?: Valve): Observable<T> =>
    defer(() => decodeFrames(video, { width: format.width, height: format.height, fps: format.fps, pixelFormat: format.gray ? 'gray' : 'rgb', valve: v })).pipe(
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
      concat(...order.flatMap((video, i) => (i % lanes === k ? [decode(video, rngs[i]!, bothOpen(laneValve, v))] : []))),
    );
    return interleave(sources, { rng: r.fork(), valves, bufferSize: options.bufferSize });
  };
  if (live.length === 0) return fileEpoch(rng, valve);
  const valves = [...live, ...(files.length ? ['files'] : [])].map(() => new Valve());
  const sources: Observable<T>[] = live.map((input, k) =>
    liveFrames(input, { ...options.live, width: format.width, height: format.height, fps: format.fps, pixelFormat: format.gray ? 'gray' : 'rgb', valve: bothOpen(valves[k]!, valve) }).pipe(
      perSource(rng.fork()),
      catchError(guard(input)),
    ),
  );
  if (files.length) sources.push(defer(() => fileEpoch(rng.fork(), bothOpen(valves[live.length]!, valve))).pipe(repeat()));
  return sources.length === 1 ? sources[0]! : interleave(sources, { rng: rng.fork(), valves, bufferSize: options.bufferSize });
}

/** Emits once when `signal` aborts (at once if it already has). */
function aborted(signal: AbortSignal): Observable<void> {
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

/**
 * A task's samples over `inputs`: what `train` wants as `TrainTask.samples`. Files give one reproducible epoch
 * per call (`videoMix`); live inputs are consumed once, forever: the first epoch never ends while they stream,
 * and later epochs are empty.
 */
export function videoSamples(task: PretextTask<Frame>, inputs: readonly (string | InputSpec)[], format: FrameFormat, options: VideoSamplesOptions = {}) {
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

/** A labelled video, or one labelled frame of it when `frame` is given. */
export interface VideoLabel {
  video: string;
  /** 0-based frame index (in the decoded stream) for frame-level labels; absent when the label is the clip's. */
  frame?: number;
  label: number;
}

/**
 * Reads a labels file, CSV with a header: `video,label` (one clip a line: every frame gets the clip's label)
 * or `video,frame,label` (one frame a line). A label is a class index or a class name (names are numbered in
 * order of first appearance). Paths are relative to the file's folder.
 */
export async function readVideoLabels(file: string): Promise<{ videos: VideoLabel[]; classNames: string[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new DataFormatError(file, 'cannot read the labels file (check the path)', { cause: error });
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = lines[0]?.replace(/\s/g, '');
  if (header !== 'video,label' && header !== 'video,frame,label') {
    throw new DataFormatError(file, `first line must be the header "video,label" or "video,frame,label"; got ${JSON.stringify(lines[0] ?? '')}`);
  }
  const perFrame = header === 'video,frame,label';
  const classNames: string[] = [];
  const videos = lines.slice(1).map((line, i): VideoLabel => {
    // Split from the right: a video path may itself hold commas.
    const fields = line.split(',');
    const raw = fields.pop()!.trim();
    const frameText = perFrame ? fields.pop()?.trim() : undefined;
    const path = fields.join(',').trim();
    if (!path || raw === '' || (perFrame && !/^\d+$/.test(frameText ?? ''))) {
      throw new DataFormatError(file, `line ${i + 2}: expected "${header}"; got ${JSON.stringify(line)}`);
    }
    let label = /^\d+$/.test(raw) ? Number(raw) : classNames.indexOf(raw);
    if (label === -1) label = classNames.push(raw) - 1;
    const video = isAbsolute(path) ? path : resolve(dirname(file), path);
    return perFrame ? { video, frame: Number(frameText), label } : { video, label };
  });
  if (videos.length === 0) throw new DataFormatError(file, 'no videos listed under the header');
  return { videos, classNames };
}

/**
 * Labelled frames for a probe, with the video as the group (so a split keeps each clip on one side):
 * for clip labels every `everyNth` frame of each video; for frame labels every `everyNth` labelled frame.
 */
export async function labelledFrames(labels: readonly VideoLabel[], format: FrameFormat, everyNth = 4): Promise<LabelledItems & { groups: string[] }> {
  const out = { items: [] as Float32Array[], labels: [] as number[], groups: [] as string[] };
  const byVideo = new Map<string, VideoLabel[]>();
  for (const entry of labels) byVideo.set(entry.video, [...(byVideo.get(entry.video) ?? []), entry]);
  for (const [video, entries] of byVideo) {
    const frameLabels = new Map(entries.filter((e) => e.frame !== undefined).map((e) => [e.frame!, e.label]));
    const clipLabel = entries.find((e) => e.frame === undefined)?.label;
    const frames = await firstValueFrom(
      decodeFrames(video, { width: format.width, height: format.height, fps: format.fps, pixelFormat: format.gray ? 'gray' : 'rgb' }).pipe(
        filter((f) => f.index % everyNth === 0 && (clipLabel !== undefined || frameLabels.has(f.index))),
        toArray(),
      ),
    );
    for (const frame of frames) {
      out.items.push(frameToFloat(frame));
      out.labels.push(frameLabels.get(frame.index) ?? clipLabel!);
      out.groups.push(video);
    }
  }
  return out;
}

/**
 * Pretext accuracy of a trained task on held-out videos: every sample the sampler draws from one pass over
 * them, in batches, mean of the task's metric weighted by batch size.
 */
export async function evaluateTask(
  task: PretextTask<Frame>,
  encoder: tf.LayersModel,
  head: tf.LayersModel,
  videos: readonly string[],
  format: FrameFormat,
  options: { seed?: number; batchSize?: number } = {},
): Promise<{ accuracy: number; samples: number }> {
  const rng = new Rng(options.seed ?? 12345);
  const shape = frameShape(format);
  // Unlike training, the short last batch counts too.
  const batches = await firstValueFrom(
    videoEpoch(videos, format, rng).pipe(task.sampler({ rng: rng.fork() }), bufferCount(options.batchSize ?? 32), toArray()),
  );
  return metricOverBatches(task, encoder, head, batches, shape);
}

/**
 * A task's metric over batches of samples (inference mode), the mean weighted by batch size. Batches smaller
 * than `minBatch` are left out after the first: contrastive tasks score within a batch, and a tiny one is an
 * easier test.
 */
export async function metricOverBatches(
  task: PretextTask<Frame>,
  encoder: tf.LayersModel,
  head: tf.LayersModel,
  batches: readonly Sample[][],
  itemShape: readonly number[],
  minBatch = 1,
): Promise<{ accuracy: number; samples: number }> {
  let correct = 0;
  let count = 0;
  for (const samples of batches) {
    if (samples.length < minBatch && count > 0) continue;
    const batch = collate(samples, task.inputShapes(itemShape), task.labelShape(itemShape));
    const metric = tf.tidy(() => task.metric(batch.labels, task.forward(encoder, head, batch.inputs, false)));
    correct += (await metric.data())[0]! * samples.length;
    count += samples.length;
    metric.dispose();
    disposeBatch(batch);
  }
  return { accuracy: count ? correct / count : NaN, samples: count };
}
