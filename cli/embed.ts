import { Command } from 'commander';
import { once } from 'node:events';
import { createWriteStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { concat, defer, fromEvent, lastValueFrom, mergeMap, reduce, takeUntil } from 'rxjs';
import { decodeFrames } from '../pipeline/decodeFrames.ts';
import { decodeOptionsOf } from '../pipeline/frameFormat.ts';
import { embedFrames } from '../models/embedFrames.ts';
import { loadEncoder } from '../evaluation/evaluate.ts';
import { expandInputs } from '../pipeline/inputs.ts';
import { liveFrames } from '../pipeline/liveSource.ts';
import { readRunInfo } from '../recipes/pretrainVideo.ts';
import { Valve } from '../core/valve.ts';
import { stopSignal, useBackend } from './backend.ts';
import { positiveInt, positiveNumber } from './options.ts';

interface EmbedFlags {
  model: string;
  video: string[];
  out: string;
  fps?: number;
  batch: number;
}

/** `tempo-ssl embed`: one JSON line per frame with the encoder's embedding. */
export function embedCommand(): Command {
  return new Command('embed')
    .description(
      'run videos through a pretrained encoder and write one JSON line per frame: source, index, timestamp, embedding',
    )
    .requiredOption('--model <DIR>', 'a pretrain --out folder, or a folder with model.json')
    .requiredOption('--video <inputs...>', 'video files, folders, globs, live URLs or - for stdin')
    .requiredOption('--out <FILE>', 'JSON lines file to write (- for stdout)')
    .option('--fps <F>', "resample videos to this frame rate (default: the run's, else every frame)", positiveNumber)
    .option('--batch <B>', 'frames per encoder call', positiveInt, 32)
    .action(async (flags: EmbedFlags, command: Command) => {
      const specs = await expandInputs(flags.video);
      await useBackend(command);
      const encoder = await loadEncoder(flags.model);
      // The run's own frame format when there is one; else what the encoder's input shape implies.
      const run = existsSync(join(flags.model, 'run.json')) ? await readRunInfo(flags.model) : undefined;
      const [, height, width, channels] = encoder.inputs[0]!.shape as [null, number, number, number];
      const decode = decodeOptionsOf({ width, height, fps: flags.fps ?? run?.format.fps, gray: channels === 1 });
      const out = flags.out === '-' ? process.stdout : createWriteStream(flags.out);
      // A live input has no end: SIGINT or SIGTERM stops reading, and the lines written so far are kept whole.
      const signal = stopSignal();
      const stopped = fromEvent(signal, 'abort');
      const written = await lastValueFrom(
        concat(
          ...specs.map((spec) =>
            defer(() => {
              const valve = new Valve();
              const frames = spec.live
                ? liveFrames(spec.input, { ...decode, valve })
                : decodeFrames(spec.input, { ...decode, valve });
              return embedFrames(encoder, frames, { batchSize: flags.batch, valve });
            }),
          ),
        ).pipe(
          takeUntil(stopped),
          // Waits for the file to drain so a long or live video does not pile lines up in memory.
          mergeMap(async (e) => {
            if (!out.write(JSON.stringify(e) + '\n')) await once(out, 'drain');
          }, 1),
          reduce((n) => n + 1, 0),
        ),
        { defaultValue: 0 },
      );
      if (out !== process.stdout) {
        out.end();
        await once(out, 'finish');
        console.error(`embedded ${written} frames into ${flags.out}`);
      }
    });
}
