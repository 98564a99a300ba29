import { Command, Option } from 'commander';
import { expandInputs, parseShard, type Shard } from '../pipeline/inputs.ts';
import { pretrainVideo } from '../pipeline/pretrainVideo.ts';
import { FRAME_TASKS, parseTaskList } from '../tasks/registry.ts';
import { stopSignal, useBackend } from './backend.ts';
import { nonNegativeInt, positiveInt, positiveNumber } from './options.ts';

interface PretrainFlags {
  video: string[];
  tasks: string;
  steps?: number;
  shard?: Shard;
  onBadInput: 'skip' | 'fail';
  stallTimeout?: number;
  batch: number;
  out: string;
  checkpointEvery: number;
  resume?: boolean;
  seed: number;
  lr: number;
  width: number;
  height: number;
  fps?: number;
  gray?: boolean;
  featureSize: number;
  json?: boolean;
}

/** `tempo-ssl pretrain`: pretrain the shared encoder on videos with one or more pretext tasks. */
export function pretrainCommand(): Command {
  return new Command('pretrain')
    .description('pretrain a frame encoder on videos with pretext tasks, checkpointing as it goes')
    .requiredOption('--video <inputs...>', 'video files, folders, globs, live URLs (http, rtsp, udp, tcp) or - for stdin')
    .option('--tasks <list>', `tasks with optional loss weights, e.g. order,frame-sim,cpc:0.5 (${FRAME_TASKS.join(', ')})`, 'order')
    .option('--steps <N>', 'optimizer steps in total (default 1000; with a live input, until stopped by SIGINT/SIGTERM)', positiveInt)
    .option('--shard <i/N>', 'take only shard i of N of the expanded inputs (0-based), for parallel workers', parseShard)
    .addOption(new Option('--on-bad-input <mode>', 'skip: count, name and leave out videos that cannot be read; fail: stop with the error').choices(['skip', 'fail']).default('fail'))
    .option('--stall-timeout <ms>', 'a live input that sends no frame this long fails (default 15000)', positiveInt)
    .option('--batch <B>', 'samples per task per step', positiveInt, 16)
    .requiredOption('--out <DIR>', 'run folder: checkpoint/, encoder/, metrics.jsonl, run.json')
    .option('--checkpoint-every <K>', 'write a checkpoint every K steps (and at the end)', positiveInt, 100)
    .option('--resume', 'continue from the checkpoint in --out')
    .option('--seed <S>', 'seed of weights and samplers', nonNegativeInt, 0)
    .option('--lr <rate>', 'Adam learning rate', positiveNumber, 1e-3)
    .option('--width <W>', 'frame width the encoder sees', positiveInt, 64)
    .option('--height <H>', 'frame height the encoder sees', positiveInt, 64)
    .option('--fps <F>', 'resample videos to this frame rate', positiveNumber)
    .option('--gray', 'train on gray frames')
    .option('--feature-size <D>', 'size of the encoder output', positiveInt, 64)
    .option('--json', 'print a JSON summary at the end')
    .action(async (flags: PretrainFlags, command: Command) => {
      const tasks = parseTaskList(flags.tasks, FRAME_TASKS);
      const specs = await expandInputs(flags.video, { shard: flags.shard });
      const videos = specs.map((spec) => spec.input);
      // A live stream has no end: without --steps the run goes on until SIGINT or SIGTERM checkpoints and stops it.
      const steps = flags.steps ?? (specs.some((spec) => spec.live) ? Number.MAX_SAFE_INTEGER : 1000);
      await useBackend(command);
      const result = await pretrainVideo({
        videos,
        tasks,
        steps,
        onBadInput: flags.onBadInput,
        live: flags.stallTimeout !== undefined ? { stallTimeoutMs: flags.stallTimeout } : undefined,
        batchSize: flags.batch,
        learningRate: flags.lr,
        seed: flags.seed,
        outDir: flags.out,
        checkpointEvery: flags.checkpointEvery,
        resume: flags.resume,
        format: { width: flags.width, height: flags.height, fps: flags.fps, gray: flags.gray },
        encoder: { featureSize: flags.featureSize },
        progress: flags.json ? 'none' : 'auto',
        signal: stopSignal(),
      });
      const summary = { steps: result.steps, startStep: result.startStep, stoppedBy: result.stoppedBy, last: result.last, out: flags.out, badInputs: result.badInputs };
      if (flags.json) console.log(JSON.stringify(summary));
      else {
        const last = result.last;
        console.log(`pretrained ${result.steps} steps (from ${result.startStep}, stopped by ${result.stoppedBy})` +
          (last ? `; last loss ${last.loss.toFixed(4)}, ${Object.entries(last.tasks).map(([n, t]) => `${n} acc ${t.accuracy.toFixed(3)}`).join(', ')}` : '') +
          `; encoder in ${flags.out}/encoder`);
        if (result.badInputs.length > 0) {
          console.log(`skipped ${result.badInputs.length} bad input(s):`);
          for (const bad of result.badInputs) console.log(`  ${bad.input}: ${bad.error}`);
        }
      }
    });
}
