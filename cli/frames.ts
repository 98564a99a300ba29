import { Command } from 'commander';
import { lastValueFrom, reduce } from 'rxjs';
import { decodeFrames } from '../pipeline/decodeFrames.ts';
import { decodeOptionsOf } from '../pipeline/frameFormat.ts';
import { NoSamplesError } from '../core/errors.ts';
import { positiveInt, positiveNumber } from './options.ts';

/** `tempo-ssl frames <input>`: decode every frame and report the count, size and throughput. */
export function framesCommand(): Command {
  return new Command('frames')
    .description('decode every frame of a video and print the count, frame size, seconds taken and frames/s')
    .argument('<input>', 'video file, URL, or - for stdin')
    .option('--width <W>', 'output width in pixels', positiveInt)
    .option('--height <H>', 'output height in pixels', positiveInt)
    .option('--fps <F>', 'resample to this frame rate', positiveNumber)
    .option('--gray', 'decode to one gray channel instead of rgb')
    .option('--json', 'print one JSON object: frames, width, height, seconds, framesPerSecond')
    .action(
      async (
        input: string,
        opts: { width?: number; height?: number; fps?: number; gray?: boolean; json?: boolean },
      ) => {
        const started = performance.now();
        const stats = await lastValueFrom(
          decodeFrames(input, decodeOptionsOf(opts)).pipe(
            reduce(
              (acc, f) => ({
                frames: acc.frames + 1,
                width: f.width,
                height: f.height,
                channels: f.channels,
                lastTimestamp: f.timestamp,
              }),
              {
                frames: 0,
                width: 0,
                height: 0,
                channels: 0,
                lastTimestamp: 0,
              },
            ),
          ),
        );
        if (stats.frames === 0) throw new NoSamplesError([input], 'no frames decoded (an empty or not-a-video file?)');
        const seconds = (performance.now() - started) / 1000;
        const result = {
          frames: stats.frames,
          width: stats.width,
          height: stats.height,
          seconds,
          framesPerSecond: stats.frames / seconds,
        };
        if (opts.json) console.log(JSON.stringify(result));
        else {
          console.log(
            `${input}: ${result.frames} frames of ${result.width}x${result.height}x${stats.channels}, ` +
              `decoded in ${seconds.toFixed(2)} s (${result.framesPerSecond.toFixed(0)} frames/s)`,
          );
        }
      },
    );
}
