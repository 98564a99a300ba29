import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { Observable, type Subscriber } from 'rxjs';
import { OptionError, VideoDecodeError, VideoNotFoundError } from '../core/errors.ts';
import { resolveFfmpegPath } from './ffmpegPaths.ts';
import type { Frame } from './frame.ts';
import { classifyProbeFailure, isStreamInput, probeVideo, tail } from './probeVideo.ts';
import { Valve } from '../core/valve.ts';

/** Options of `decodeFrames`. Every field is optional; `undefined` means the default. */
export interface DecodeOptions {
  /** Output width in pixels. Default: the displayed width; if only `height` is given, keeps the aspect ratio. */
  width?: number;
  /** Output height in pixels. Default: the displayed height; if only `width` is given, keeps the aspect ratio. */
  height?: number;
  /** Resample to this many frames per second (ffmpeg's fps filter). Default: every source frame, none dropped or repeated. */
  fps?: number;
  /** 'rgb' (3 channels) or 'gray' (1 channel). Default 'rgb'. */
  pixelFormat?: 'rgb' | 'gray';
  /** Seconds to skip from the start (accurate seek). Default 0. */
  start?: number;
  /** Seconds to decode from `start`. Default: to the end. */
  duration?: number;
  /** Frames read ahead of a closed valve before ffmpeg's output is paused; memory is about this many frames. Default 8. */
  maxBufferedFrames?: number;
  /** Backpressure: while the consumer keeps it closed no frame is emitted and ffmpeg's output is paused. */
  valve?: Valve;
  /** Milliseconds between SIGTERM and SIGKILL when an unsubscribe stops ffmpeg. Default 1000. */
  killGraceMs?: number;
  /** Called with the ffmpeg child process once it runs (to log or watch it; tests check it is gone after unsubscribe). */
  onProcess?: (child: ChildProcess) => void;
}

interface Resolved {
  width?: number;
  height?: number;
  fps?: number;
  pixelFormat: 'rgb' | 'gray';
  start: number;
  duration?: number;
  maxBufferedFrames: number;
  valve?: Valve;
  killGraceMs: number;
  onProcess?: (child: ChildProcess) => void;
}

/** What the decoder must know before it can slice ffmpeg's output into frames. */
interface Geometry {
  width: number;
  height: number;
  channels: 1 | 3;
}

/** Messages with which ffmpeg reports a file that ends early while still exiting with status 0. */
const TRUNCATION =
  /Read error|partial file|Truncat|Invalid data found|moov atom not found|Error while decoding stream/i;

/** ffmpeg runs with `-loglevel level+info`: every line carries its level, so problems are told from metadata text. */
const PROBLEM_LINE = /\[(warning|error|fatal|panic)\] /;

/**
 * Decodes a video file, URL (http, rtsp, udp, tcp, ...) or stdin (`'-'`) into a stream of frames with ffmpeg:
 * rotation metadata honoured, optionally scaled, resampled in time, cut to a range and converted to gray.
 * Without `fps`, every source frame comes out once (`-vsync 0`), so the count equals `ffprobe -count_frames`.
 *
 * A frame's pixels are never written again (see Frame.data). Unsubscribing stops ffmpeg (SIGTERM, then SIGKILL
 * after `killGraceMs`). A missing file, a file without video and an undecodable file arrive as `VideoNotFoundError`,
 * `NoVideoStreamError` and `VideoDecodeError` through `subscriber.error`, carrying the input and ffmpeg's stderr
 * tail; a file that decodes partly and then breaks emits the frames it has and then errors. (A cut mpeg-ts is
 * indistinguishable from a shorter one and completes.) Timestamps are `index / fps`, with the source's rate (as
 * ffmpeg reports it when it opens the input) when `fps` is not given; NaN if the input states no rate.
 *
 * Bad options throw `OptionError` at once, when the observable is built.
 *
 * @example
 * decodeFrames('clip.mp4', { width: 64, height: 64, fps: 8 }).subscribe((frame) => frame.data.length); // 64*64*3
 */
export function decodeFrames(input: string, options: DecodeOptions = {}): Observable<Frame> {
  const o = validateDecodeOptions(input, options);
  return new Observable<Frame>((subscriber) => {
    let stopRun: (() => void) | undefined;
    let stopped = false;
    prepare(input, o).then(
      ({ geometry, fps }) => {
        if (!stopped) stopRun = runDecoder(input, o, geometry, fps, subscriber);
      },
      (error) => subscriber.error(error),
    );
    return () => {
      stopped = true;
      stopRun?.();
    };
  });
}

function validateDecodeOptions(input: string, options: DecodeOptions): Resolved {
  if (typeof input !== 'string' || input === '')
    throw new OptionError('input', input, 'a file path, a URL or "-" for stdin');
  const {
    width,
    height,
    fps,
    pixelFormat = 'rgb',
    start = 0,
    duration,
    maxBufferedFrames = 8,
    valve,
    killGraceMs = 1000,
    onProcess,
  } = options;
  for (const [name, value] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (value !== undefined && !(Number.isInteger(value) && value >= 1 && value <= 16384)) {
      throw new OptionError(name, value, 'an integer from 1 to 16384 (or leave it out for the source size)');
    }
  }
  if (fps !== undefined && !(Number.isFinite(fps) && fps > 0))
    throw new OptionError('fps', fps, 'a positive number (or leave it out for every source frame)');
  if (pixelFormat !== 'rgb' && pixelFormat !== 'gray')
    throw new OptionError('pixelFormat', pixelFormat, "'rgb' or 'gray'");
  if (!(Number.isFinite(start) && start >= 0)) throw new OptionError('start', start, 'a number of seconds >= 0');
  if (duration !== undefined && !(Number.isFinite(duration) && duration > 0))
    throw new OptionError('duration', duration, 'a number of seconds > 0');
  if (!(Number.isInteger(maxBufferedFrames) && maxBufferedFrames >= 1))
    throw new OptionError('maxBufferedFrames', maxBufferedFrames, 'an integer >= 1');
  if (valve !== undefined && !(valve instanceof Valve))
    throw new OptionError('valve', valve, 'a Valve from core/valve.ts');
  if (!(Number.isFinite(killGraceMs) && killGraceMs >= 0))
    throw new OptionError('killGraceMs', killGraceMs, 'a number of milliseconds >= 0');
  if (input === '-' && (width === undefined || height === undefined)) {
    throw new OptionError(
      'width/height',
      { width, height },
      'both given when reading stdin ("-"), which cannot be probed',
    );
  }
  return { width, height, fps, pixelFormat, start, duration, maxBufferedFrames, valve, killGraceMs, onProcess };
}

/**
 * Works out the output size and, when known up front, the rate used for timestamps. Probes only when the size is
 * left open; otherwise the rate is read from ffmpeg's own input dump (`fps` undefined), so a decode given its size
 * runs one process, exactly like a bare ffmpeg command.
 */
async function prepare(input: string, o: Resolved): Promise<{ geometry: Geometry; fps: number | undefined }> {
  if (!isStreamInput(input) && !existsSync(input)) throw new VideoNotFoundError(input);
  const channels = o.pixelFormat === 'gray' ? 1 : 3;
  if (o.width !== undefined && o.height !== undefined) {
    return { geometry: { width: o.width, height: o.height, channels }, fps: o.fps };
  }
  const info = await probeVideo(input);
  const aspect = info.width / info.height;
  const width = o.width ?? (o.height !== undefined ? Math.max(1, Math.round(o.height * aspect)) : info.width);
  const height = o.height ?? (o.width !== undefined ? Math.max(1, Math.round(o.width / aspect)) : info.height);
  return { geometry: { width, height, channels }, fps: o.fps ?? info.fps ?? Number.NaN };
}

function ffmpegArgs(input: string, o: Resolved, g: Geometry): { inputOptions: string[]; outputOptions: string[] } {
  const inputOptions = ['-hide_banner', '-nostats', '-loglevel', 'level+info'];
  if (input !== '-') inputOptions.push('-nostdin');
  if (o.start > 0) inputOptions.push('-ss', String(o.start));
  const filters = [...(o.fps !== undefined ? [`fps=${o.fps}`] : []), `scale=${g.width}:${g.height}`];
  const outputOptions = ['-map', '0:v:0', '-an', '-sn', '-dn', '-vsync', '0', '-vf', filters.join(',')];
  if (o.duration !== undefined) outputOptions.push('-t', String(o.duration));
  outputOptions.push('-pix_fmt', o.pixelFormat === 'gray' ? 'gray' : 'rgb24', '-f', 'rawvideo');
  return { inputOptions, outputOptions };
}

/** Starts ffmpeg and feeds `subscriber`; returns the teardown that stops it. */
function runDecoder(
  input: string,
  o: Resolved,
  g: Geometry,
  fps: number | undefined,
  subscriber: Subscriber<Frame>,
): () => void {
  const frameBytes = g.width * g.height * g.channels;
  let stopped = false;
  let index = 0;
  let sinkFinished = false;
  let exit: { error?: Error; code?: number | null; stderr: string } | undefined;

  // Without `fps` and a probe, frames wait in the sink until ffmpeg's input dump has named the rate.
  let rate = fps;
  let rateWaiters: Array<() => void> = [];
  const setRate = (r: number) => {
    if (rate !== undefined) return;
    rate = r;
    const waiters = rateWaiters;
    rateWaiters = [];
    for (const resume of waiters) resume();
  };
  const waitForRate = (resume: () => void): (() => void) => {
    rateWaiters.push(resume);
    return () => (rateWaiters = rateWaiters.filter((w) => w !== resume));
  };

  const sink = frameSink(
    frameBytes,
    o.maxBufferedFrames,
    o.valve,
    () => rate !== undefined,
    waitForRate,
    (data) => {
      if (stopped) return false;
      subscriber.next({
        data,
        width: g.width,
        height: g.height,
        channels: g.channels,
        index,
        timestamp: index / rate!,
        source: input,
      });
      index++;
      return !stopped;
    },
  );

  const settle = () => {
    if (stopped || !sinkFinished || !exit) return;
    stopped = true;
    const stderr = tail(exit.stderr);
    if (exit.error) subscriber.error(classifyProbeFailure(input, stderr, exit.code ?? null));
    else if (TRUNCATION.test(stderr))
      subscriber.error(
        new VideoDecodeError(input, `the stream broke off after ${index} frames (truncated or corrupt)`, stderr),
      );
    else if (sink.partialBytes() > 0)
      subscriber.error(new VideoDecodeError(input, `ffmpeg's output ended inside frame ${index}`, stderr));
    else subscriber.complete();
  };

  const { inputOptions, outputOptions } = ffmpegArgs(input, o, g);
  const args = [...inputOptions, '-i', input === '-' ? 'pipe:0' : input, ...outputOptions, 'pipe:1'];
  // Spawned directly: fluent-ffmpeg (deprecated upstream) cost a capability probe per process and ~12 ms of
  // process handling per decode, which short clips pay in full.
  const child = spawn(resolveFfmpegPath(), args, { stdio: [input === '-' ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let problems = '';
  let partialLine = '';
  let inInputDump = true;
  const readLine = (line: string) => {
    if (PROBLEM_LINE.test(line)) problems = tail(problems + line.replace(PROBLEM_LINE, '') + '\n', 8000);
    if (rate !== undefined || !inInputDump) return;
    if (/Stream #\S+.*: Video: /.test(line)) setRate(readRate(line));
    // The input dump ends where the mapping starts; an input that named no video rate gets NaN timestamps.
    else if (/Stream mapping:|Output #0/.test(line)) {
      inInputDump = false;
      setRate(Number.NaN);
    }
  };
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    const lines = (partialLine + text).split(/\r?\n/);
    partialLine = lines.pop()!;
    lines.forEach(readLine);
  });
  child.on('error', (error: Error) => {
    // The process did not start: no output will come to finish the sink.
    sinkFinished = true;
    exit ??= { error, code: null, stderr: `could not run ffmpeg (${error.message})` };
    setRate(Number.NaN);
    settle();
  });
  child.on('close', (code: number | null) => {
    if (partialLine) readLine(partialLine);
    exit ??=
      code === 0
        ? { stderr: problems }
        : { error: new Error(`ffmpeg exited with code ${code}`), code, stderr: problems };
    setRate(Number.NaN);
    settle();
  });
  if (input === '-') {
    child.stdin!.on('error', () => {}); // ffmpeg may exit before it has read all of stdin
    process.stdin.pipe(child.stdin!);
  }
  o.onProcess?.(child);
  sink.on('finish', () => {
    sinkFinished = true;
    settle();
  });
  child.stdout!.pipe(sink, { end: true });

  return () => {
    stopped = true;
    sink.cancel();
    if (input === '-' && child.stdin) process.stdin.unpipe(child.stdin);
    killGently(child, o.killGraceMs);
  };
}

/** The frame rate in an input dump line such as `Stream #0:0: Video: h264 ..., 25 fps, 25 tbr, ...`. */
function readRate(streamLine: string): number {
  const match = /, ([\d.]+)(k?) fps/.exec(streamLine) ?? /, ([\d.]+)(k?) tbr/.exec(streamLine);
  return match ? Number(match[1]) * (match[2] ? 1000 : 1) : Number.NaN;
}

/**
 * A writable that slices ffmpeg's byte stream into frames: a frame whole within a chunk is a view of the chunk
 * (Node hands each read to its reader, and ffmpeg writes a frame at a time, so a chunk is mostly one frame), one
 * split between chunks is copied into an array of its own. Copying every frame cost more CPU than everything
 * else this process does during a decode (a copy and an allocation a frame, and the collections they caused:
 * about 7 ms of Node CPU above bare ffmpeg's on a 164-frame clip, 3 ms without), and that CPU is taken from
 * ffmpeg's own threads on a small machine. Chunks may split frames anywhere. While `valve` is closed (or the
 * timestamp rate is not known yet) it holds the current chunk unacknowledged, so the stream buffers at most
 * `maxBufferedFrames` frames and then pauses ffmpeg's stdout.
 */
function frameSink(
  frameBytes: number,
  maxBufferedFrames: number,
  valve: Valve | undefined,
  ready: () => boolean,
  waitReady: (resume: () => void) => () => void,
  emit: (data: Uint8Array) => boolean,
): Writable & { partialBytes(): number; cancel(): void } {
  let current = new Uint8Array(frameBytes);
  let filled = 0;
  let cancelWait: (() => void) | undefined;
  let cancelled = false;
  // The chunk being sliced, where it is read to, and its write's callback. One `pump` serves every chunk: a
  // closure made per write cost about 1 ms a decode of a short clip under tsx (its keepNames helper names each).
  let chunk: Buffer | undefined;
  let offset = 0;
  let done: ((error?: Error | null) => void) | undefined;

  const finishChunk = (): void => {
    const callback = done!;
    chunk = done = undefined;
    callback();
  };
  const pump = (): void => {
    cancelWait = undefined;
    const bytes = chunk!;
    while (offset < bytes.length) {
      if (cancelled) return finishChunk();
      if (!ready()) return void (cancelWait = waitReady(pump));
      if (valve && !valve.isOpen) return void (cancelWait = valve.onOpen(pump));
      if (filled === 0 && bytes.length - offset >= frameBytes) {
        // A frame whole in this chunk is a view of it (no copy, no new allocation): see Frame.data.
        const frame = new Uint8Array(bytes.buffer, bytes.byteOffset + offset, frameBytes);
        offset += frameBytes;
        if (!emit(frame)) cancelled = true;
        continue;
      }
      const n = Math.min(frameBytes - filled, bytes.length - offset);
      current.set(bytes.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
      if (filled === frameBytes) {
        const frame = current;
        current = new Uint8Array(frameBytes);
        filled = 0;
        if (!emit(frame)) cancelled = true;
      }
    }
    finishChunk();
  };

  const sink = new Writable({
    highWaterMark: maxBufferedFrames * frameBytes,
    // Finishing is reported through 'finish'; 'close' would add nothing.
    emitClose: false,
    write(data: Buffer, _encoding, callback) {
      chunk = data;
      offset = 0;
      done = callback;
      pump();
    },
  });
  // Writes that race a cancel fail here; the decoder has already been stopped and reports nothing more.
  sink.on('error', () => {});
  return Object.assign(sink, {
    partialBytes: () => filled,
    cancel: () => {
      cancelled = true;
      cancelWait?.();
      sink.destroy();
    },
  });
}

/** SIGTERM, then SIGKILL after `graceMs` if ffmpeg is still there; its stdout is closed first so a blocked write fails. */
function killGently(child: ChildProcess, graceMs: number): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.stdout?.destroy();
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }, graceMs);
  timer.unref();
  child.once('exit', () => clearTimeout(timer));
}
