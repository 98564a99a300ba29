import { Command } from 'commander';
import { once } from 'node:events';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { tempNameFor } from '../core/atomicWrite.ts';
import { NoSamplesError, OptionError } from '../core/errors.ts';
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
      const target = flags.out === '-' ? undefined : await checkOutPath(flags.out);
      const specs = await expandInputs(flags.video);
      await useBackend(command);
      const encoder = await loadEncoder(flags.model);
      // The run's own frame format when there is one; else what the encoder's input shape implies.
      const run = existsSync(join(flags.model, 'run.json')) ? await readRunInfo(flags.model) : undefined;
      const [, height, width, channels] = encoder.inputs[0]!.shape as [null, number, number, number];
      const decode = decodeOptionsOf({ width, height, fps: flags.fps ?? run?.format.fps, gray: channels === 1 });
      // Lines go to a temp file beside the target, renamed over it only when every input was embedded.
      const temp = target && tempNameFor(target);
      const out = temp ? createWriteStream(temp) : process.stdout;
      const failed = new Promise<never>((_, reject) => out.once('error', reject));
      failed.catch(() => {});
      // A live input has no end: SIGINT or SIGTERM stops reading, and the lines written so far are kept whole.
      const signal = stopSignal();
      const stopped = fromEvent(signal, 'abort');
      const embedding = lastValueFrom(
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
      try {
        const written = await Promise.race([embedding, failed]);
        if (written === 0) throw new NoSamplesError(flags.video, 'no frames to embed (0 frames decoded)');
        if (temp && target) {
          out.end();
          await Promise.race([once(out, 'finish'), failed]);
          await rename(temp, target);
          console.error(`embedded ${written} frames into ${target}`);
        }
      } catch (error) {
        if (temp) {
          (out as WriteStream).destroy();
          await rm(temp, { force: true });
        }
        throw error;
      }
    });
}

/**
 * The resolved `--out` file, or an OptionError naming the problem: a folder, or a path under a missing folder
 * (a write stream would otherwise fail later, mid-run, with a stack trace).
 */
async function checkOutPath(path: string): Promise<string> {
  const target = resolve(path);
  const info = await stat(target).catch(() => undefined);
  if (info?.isDirectory()) throw new OptionError('--out', path, 'a file path (it is a folder), e.g. embeddings.jsonl');
  const parent = await stat(dirname(target)).catch(() => undefined);
  if (!parent?.isDirectory())
    throw new OptionError('--out', path, `a file in an existing folder (${dirname(target)} does not exist)`);
  return target;
}
