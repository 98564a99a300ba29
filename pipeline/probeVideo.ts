import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { NoVideoStreamError, OptionError, VideoDecodeError, VideoError, VideoNotFoundError } from '../core/errors.ts';
import { resolveFfmpegPath, resolveFfprobePath } from './ffmpegPaths.ts';

/** What `probeVideo` learns about the first video stream of an input. */
export interface VideoInfo {
  /** The input as given (path or URL). */
  input: string;
  /** Width as displayed, after the rotation below is applied (ffmpeg applies it when decoding). */
  width: number;
  /** Height as displayed, after rotation. */
  height: number;
  /** Width of the stored (coded) pictures, before rotation. */
  storedWidth: number;
  /** Height of the stored pictures, before rotation. */
  storedHeight: number;
  /** Frames per second (average rate, else the stream's base rate); undefined when the container does not say. */
  fps: number | undefined;
  /** Duration in seconds; undefined for live streams and containers that do not record it. */
  duration: number | undefined;
  /** Number of frames: counted by decoding with `countFrames`, else the container's count; undefined if unknown. */
  frameCount: number | undefined;
  /** Clockwise turn in degrees that displays the stored pictures upright: 0, 90, 180 or 270. */
  rotation: 0 | 90 | 180 | 270;
  /** ffmpeg's codec name, e.g. `h264`, `mpeg4`. */
  codec: string;
  /** Whether the input also has an audio stream. */
  hasAudio: boolean;
}

/** Options of `probeVideo`. */
export interface ProbeOptions {
  /** Decode the whole stream to count frames exactly (`ffprobe -count_frames`); slow on long videos. Default false. */
  countFrames?: boolean;
  /** Milliseconds before ffprobe is killed and the probe fails, for URLs that never answer. Default 30000. */
  timeoutMs?: number;
}

interface FfprobeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  duration?: string;
  nb_frames?: string;
  nb_read_frames?: string;
  tags?: Record<string, string>;
  side_data_list?: { side_data_type?: string; rotation?: number }[];
}

/** Whether an input string names a stream ffmpeg opens itself (URL or stdin) rather than a local file. */
export function isStreamInput(input: string): boolean {
  return input === '-' || /^[a-z][a-z0-9+.-]*:\/\//i.test(input) || input.startsWith('pipe:');
}

/**
 * Reads size, rate, duration, rotation and codec of the first video stream of a file or URL with ffprobe.
 * Rejects with `VideoNotFoundError` (missing), `NoVideoStreamError` (e.g. an audio file) or `VideoDecodeError`
 * (unreadable; carries the tail of ffprobe's stderr).
 *
 * @example
 * const info = await probeVideo('clip.mp4');
 * info.width; info.height; info.fps; // 64 64 12
 */
export async function probeVideo(input: string, options: ProbeOptions = {}): Promise<VideoInfo> {
  const { countFrames = false, timeoutMs = 30000 } = options;
  if (typeof input !== 'string' || input === '' || input === '-') {
    throw new OptionError('input', input, 'a file path or URL (stdin cannot be probed; give width and height instead)');
  }
  if (!(timeoutMs > 0)) throw new OptionError('timeoutMs', timeoutMs, 'a positive number of milliseconds');
  if (!isStreamInput(input) && !existsSync(input)) throw new VideoNotFoundError(input);

  const args = ['-v', 'error', '-print_format', 'json', '-show_streams', '-show_format'];
  if (countFrames) args.push('-count_frames', '-select_streams', 'v:0');
  const { code, stdout, stderr } = await runTool(resolveFfprobePath(), [...args, input], timeoutMs);
  // The ffprobe that @ffprobe-installer ships (2023 static build) segfaults on every mpeg-ts file; ffmpeg's own
  // input dump knows the same facts, so read those instead when ffprobe dies from a signal.
  if (code === null && !stderr.includes('timed out')) return probeWithFfmpeg(input, countFrames, timeoutMs);
  if (code !== 0) throw classifyProbeFailure(input, stderr, code);

  let parsed: { streams?: FfprobeStream[]; format?: { duration?: string } };
  try {
    parsed = JSON.parse(stdout);
  } catch (cause) {
    throw new VideoDecodeError(input, 'ffprobe printed no readable JSON', stderr, { cause });
  }
  const streams = parsed.streams ?? [];
  const video = streams.find((s) => s.codec_type === 'video');
  if (!video || !video.width || !video.height) throw new NoVideoStreamError(input, stderr);
  return toVideoInfo(
    input,
    video,
    parsed.format?.duration,
    streams.some((s) => s.codec_type === 'audio'),
  );
}

function toVideoInfo(
  input: string,
  video: FfprobeStream,
  formatDuration: string | undefined,
  hasAudio: boolean,
): VideoInfo {
  const rotation = readRotation(video);
  const sideways = rotation === 90 || rotation === 270;
  const storedWidth = video.width!;
  const storedHeight = video.height!;
  const count = Number(video.nb_read_frames ?? video.nb_frames);
  return {
    input,
    width: sideways ? storedHeight : storedWidth,
    height: sideways ? storedWidth : storedHeight,
    storedWidth,
    storedHeight,
    fps: parseRate(video.avg_frame_rate) ?? parseRate(video.r_frame_rate),
    duration: positive(Number(video.duration)) ?? positive(Number(formatDuration)),
    frameCount: Number.isInteger(count) && count > 0 ? count : undefined,
    rotation,
    codec: video.codec_name ?? 'unknown',
    hasAudio,
  };
}

/**
 * Newer ffprobe reports a display matrix (`rotation`: counter-clockwise degrees), older ones a `rotate` tag
 * (clockwise degrees); both are turned into the clockwise turn that ffmpeg's autorotation applies.
 */
function readRotation(video: FfprobeStream): 0 | 90 | 180 | 270 {
  const matrix = video.side_data_list?.find((d) => typeof d.rotation === 'number');
  const clockwise = matrix ? -matrix.rotation! : Number(video.tags?.rotate ?? 0);
  const quarter = ((Math.round(clockwise / 90) % 4) + 4) % 4;
  return (quarter * 90) as 0 | 90 | 180 | 270;
}

function parseRate(rate: string | undefined): number | undefined {
  if (!rate) return undefined;
  const [num, den = '1'] = rate.split('/');
  return positive(Number(num) / Number(den));
}

function positive(x: number): number | undefined {
  return Number.isFinite(x) && x > 0 ? x : undefined;
}

/** Maps a failed ffmpeg/ffprobe run to the error class its stderr points at. Shared with `decodeFrames`. */
export function classifyProbeFailure(input: string, stderr: string, code: number | null): Error {
  if (/No such file or directory|Server returned 404|HTTP error 404/i.test(stderr))
    return new VideoNotFoundError(input);
  if (/matches no streams|does not contain any stream|no video stream/i.test(stderr))
    return new NoVideoStreamError(input, stderr);
  // Not a broken video: re-encoding would not help, so each gets its own fix.
  if (isEmptyFile(input))
    return new VideoError(`${input} is empty (0 bytes): no frames to read (give a video file)`, input);
  if (/Is a directory/.test(stderr))
    return new VideoError(
      `${input} is a folder, not a video (give the folder to --video, which reads the videos in it)`,
      input,
    );
  if (/Connection refused/i.test(stderr))
    return new VideoError(
      `cannot connect to ${input}: connection refused (check the address and that the sender is running)`,
      input,
      tail(stderr, 300),
    );
  const size = /Picture size (\d+x\d+) is invalid/.exec(stderr);
  if (size)
    return new VideoError(
      `frame size ${size[1]} is too large for ffmpeg while decoding ${input} (give a smaller --width/--height, e.g. 64)`,
      input,
    );
  return new VideoDecodeError(input, `ffmpeg exited with code ${code}`, tail(stderr));
}

function isEmptyFile(input: string): boolean {
  try {
    return statSync(input).isFile() && statSync(input).size === 0;
  } catch {
    return false;
  }
}

/** The last `max` characters of a log, cut at a line start. */
export function tail(log: string, max = 2000): string {
  if (log.length <= max) return log;
  const cut = log.slice(-max);
  return cut.slice(cut.indexOf('\n') + 1);
}

/** Probes by parsing the input dump `ffmpeg -i` prints; with `countFrames`, decodes to a null output and reads the count. */
async function probeWithFfmpeg(input: string, countFrames: boolean, timeoutMs: number): Promise<VideoInfo> {
  const { stderr } = await runTool(resolveFfmpegPath(), ['-hide_banner', '-nostdin', '-i', input], timeoutMs);
  const lines = stderr.split('\n');
  const at = lines.findIndex((l) => /Stream #\S+.*: Video: /.test(l));
  if (at < 0) {
    if (/Stream #\S+.*: (Audio|Subtitle|Data): /.test(stderr)) throw new NoVideoStreamError(input, stderr);
    throw classifyProbeFailure(input, stderr, 1);
  }
  const streamLine = lines[at]!;
  const size = /, (\d+)x(\d+)/.exec(streamLine);
  if (!size) throw new VideoDecodeError(input, 'ffmpeg reports a video stream without a size', tail(stderr));
  const next = lines.findIndex((l, i) => i > at && /^\s*Stream #/.test(l));
  const details = lines.slice(at + 1, next < 0 ? undefined : next).join('\n');
  const matrix = /displaymatrix: rotation of (-?[\d.]+) degrees/.exec(details);
  const tag = /rotate\s*: (-?\d+)/.exec(details);
  const duration = /Duration: (\d+):(\d+):([\d.]+)/.exec(stderr);
  const fps = /, ([\d.]+) fps/.exec(streamLine) ?? /, ([\d.]+) tbr/.exec(streamLine);
  let frames: string | undefined;
  if (countFrames) {
    const args = ['-nostdin', '-v', 'info', '-i', input, '-map', '0:v:0', '-vsync', '0', '-f', 'null', '-'];
    const counted = await runTool(resolveFfmpegPath(), args, timeoutMs);
    frames = [...counted.stderr.matchAll(/frame=\s*(\d+)/g)].at(-1)?.[1];
  }
  const stream: FfprobeStream = {
    codec_type: 'video',
    codec_name: /: Video: (\w+)/.exec(streamLine)?.[1],
    width: Number(size[1]),
    height: Number(size[2]),
    avg_frame_rate: fps?.[1],
    nb_read_frames: frames,
    tags: tag ? { rotate: tag[1]! } : {},
    side_data_list: matrix ? [{ rotation: Number(matrix[1]) }] : [],
  };
  const seconds = duration
    ? String(Number(duration[1]) * 3600 + Number(duration[2]) * 60 + Number(duration[3]))
    : undefined;
  return toVideoInfo(input, stream, seconds, /Stream #\S+.*: Audio: /.test(stderr));
}

function runTool(
  path: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr = tail(stderr + s, 8000)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      stderr += `\nprobe timed out after ${timeoutMs} ms`;
    }, timeoutMs);
    child.on('error', (cause) => {
      clearTimeout(timer);
      reject(new VideoDecodeError(args.at(-1)!, `cannot run ${path} (${cause.message})`, '', { cause }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
