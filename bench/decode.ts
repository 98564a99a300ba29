import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { lastValueFrom, reduce } from 'rxjs';
import { decodeFrames } from '../pipeline/decodeFrames.ts';
import { resolveFfmpegPath } from '../pipeline/ffmpegPaths.ts';
import { probeVideo } from '../pipeline/probeVideo.ts';
import { cpuSecondsSince, median } from './median.ts';

/** One measured line of the bench. */
export interface Row {
  /** File name of the video. */
  video: string;
  /** Frames decodeFrames emitted (no fps resampling). */
  frames: number;
  /** Frames `ffprobe -count_frames` counts; must equal `frames`. */
  countFrames: number | undefined;
  /** decodeFrames frames per second at 64x64 rgb, median of the runs (ffmpeg start and probe included). */
  oursFps: number;
  /** Frames per second of the same ffmpeg command line read raw from a pipe and discarded, median of the runs. */
  rawFps: number;
  /** Median milliseconds of one whole decode with decodeFrames. */
  oursMs: number;
  /** Median milliseconds of one whole bare ffmpeg run. */
  rawMs: number;
  /** oursFps / rawFps; the target is >= 0.95 (issue 11). */
  ratio: number;
  /**
   * Median CPU milliseconds of this process (every thread, ffmpeg not included) during one decode with
   * decodeFrames: the work a decode adds to a machine that is also training. Steadier than the wall clock.
   */
  oursCpuMs: number;
  /** The same during one bare ffmpeg run (spawning it and reading its output). */
  rawCpuMs: number;
}

/** Options of {@link benchDecode}. */
export interface DecodeBenchOptions {
  /** Folder holding `video/`. Default `$TEMPO_DATA`, else `<repo>/../shared/data`. */
  dataDir?: string;
  /**
   * Timed runs of each side per video, after 3 untimed ones each, half of them with each side first. Default: as
   * many as take about 3 s of each side (at least 10, at most 40), so a 60 ms clip gets 40 runs, not 10: with 10,
   * the ratio of one short clip swung from 0.85 to 1.09 between bench runs on a machine shared with other jobs.
   */
  runs?: number;
  /** Output size (square). Default 64. */
  size?: number;
}

/** Untimed runs of each side per video before the timed ones. */
const WARM_UP = 3;

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Throughput of {@link decodeFrames} at 64x64 rgb against the bare ffmpeg it drives (same binary, input, filters
 * and `-vsync 0`, output read from a pipe and dropped), per video in the shared data folder, plus the check that
 * it emits exactly as many frames as `ffprobe -count_frames` counts. Runs alternate between the two sides so that
 * load from other processes hits both alike.
 *
 * @example
 * console.table(await benchDecode({ runs: 1 }));
 */
export async function benchDecode(options: DecodeBenchOptions = {}): Promise<Row[]> {
  const { size = 64 } = options;
  const videoDir = join(options.dataDir ?? process.env.TEMPO_DATA ?? join(repoRoot, '..', 'shared', 'data'), 'video');
  if (!existsSync(videoDir)) {
    console.log(`bench/decode: skipped, no videos at ${videoDir} (set TEMPO_DATA to the shared data folder)`);
    return [];
  }
  const rows: Row[] = [];
  for (const name of readdirSync(videoDir).sort()) {
    const path = join(videoDir, name);
    const countFrames = (await probeVideo(path, { countFrames: true })).frameCount;
    // Warm-up: over the first few decodes of a clip both sides got faster (the JIT, the file cache), ours more.
    let frames = 0;
    let warmMs = 0;
    for (let w = 0; w < WARM_UP; w++) {
      const t0 = performance.now();
      frames = await decodeCount(path, size);
      warmMs = performance.now() - t0;
      await rawCount(path, size);
    }
    const runs = options.runs ?? Math.min(40, Math.max(10, Math.ceil(3000 / warmMs)));
    const ours: number[] = [];
    const raw: number[] = [];
    const oursCpu: number[] = [];
    const rawCpu: number[] = [];
    for (let r = 0; r < runs; r++) {
      // Which side runs first swaps every round, so that an effect of position falls on both alike: with bare
      // ffmpeg on both sides, the first of a pair was 4-5 ms slower in two of five sets of 31 pairs (and not in
      // the other three), as large as the whole gap between the sides on a 60 ms clip.
      const sides = [
        async () => {
          const [t0, c0] = [performance.now(), process.cpuUsage()];
          frames = await decodeCount(path, size);
          ours.push(performance.now() - t0);
          oursCpu.push(1000 * cpuSecondsSince(c0));
        },
        async () => {
          const [t0, c0] = [performance.now(), process.cpuUsage()];
          const rawFrames = await rawCount(path, size);
          raw.push(performance.now() - t0);
          rawCpu.push(1000 * cpuSecondsSince(c0));
          if (rawFrames !== frames)
            throw new Error(`${name}: raw ffmpeg gave ${rawFrames} frames, decodeFrames ${frames}`);
        },
      ];
      if (r % 2 === 1) sides.reverse();
      for (const side of sides) await side();
    }
    const oursFps = frames / (median(ours) / 1000);
    const rawFps = frames / (median(raw) / 1000);
    rows.push({
      video: name,
      frames,
      countFrames,
      oursFps: round(oursFps),
      rawFps: round(rawFps),
      oursMs: round(median(ours), 1),
      rawMs: round(median(raw), 1),
      ratio: round(oursFps / rawFps, 3),
      oursCpuMs: round(median(oursCpu), 1),
      rawCpuMs: round(median(rawCpu), 1),
    });
  }
  return rows;
}

function decodeCount(path: string, size: number): Promise<number> {
  return lastValueFrom(decodeFrames(path, { width: size, height: size }).pipe(reduce((n) => n + 1, 0)));
}

/** The command line decodeFrames builds, run bare: bytes read and dropped, frames = bytes / frame size. */
function rawCount(path: string, size: number): Promise<number> {
  const args = [
    '-hide_banner',
    '-nostats',
    '-loglevel',
    'level+info',
    '-nostdin',
    '-i',
    path,
    '-map',
    '0:v:0',
    '-an',
    '-sn',
    '-dn',
    '-vsync',
    '0',
    '-vf',
    `scale=${size}:${size}`,
    '-pix_fmt',
    'rgb24',
    '-f',
    'rawvideo',
    'pipe:1',
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(resolveFfmpegPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr.resume();
    let bytes = 0;
    child.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(bytes / (size * size * 3)) : reject(new Error(`ffmpeg exited with ${code} on ${path}`)),
    );
  });
}

function round(x: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await benchDecode();
  console.table(rows);
  const off = rows.filter((r) => r.frames !== r.countFrames);
  if (off.length)
    console.log(`frame counts differ from ffprobe -count_frames for: ${off.map((r) => r.video).join(', ')}`);
}
