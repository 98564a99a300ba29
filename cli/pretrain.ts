import { Command } from 'commander';
import { expandInputs } from '../pipeline/inputs.ts';
import { pretrainVideo } from '../pipeline/pretrainVideo.ts';
import { FRAME_TASKS, parseTaskList } from '../tasks/registry.ts';
import { stopSignal, useBackend } from './backend.ts';
import { nonNegativeInt, positiveInt, positiveNumber } from './options.ts';

interface PretrainFlags {
  video: string[];
  tasks: string;
  steps: number;
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
    .requiredOption('--video <inputs...>', 'video files, folders or globs')
    .option('--tasks <list>', `tasks with optional loss weights, e.g. order,frame-sim,cpc:0.5 (${FRAME_TASKS.join(', ')})`, 'order')
    .option('--steps <N>', 'optimizer steps in total', positiveInt, 1000)
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
      const videos = (await expandInputs(flags.video)).map((spec) => spec.input);
      await useBackend(command);
      const result = await pretrainVideo({
        videos,
        tasks,
        steps: flags.steps,
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
      const summary = { steps: result.steps, startStep: result.startStep, stoppedBy: result.stoppedBy, last: result.last, out: flags.out };
      if (flags.json) console.log(JSON.stringify(summary));
      else {
        const last = result.last;
        console.log(`pretrained ${result.steps} steps (from ${result.startStep}, stopped by ${result.stoppedBy})` +
          (last ? `; last loss ${last.loss.toFixed(4)}, ${Object.entries(last.tasks).map(([n, t]) => `${n} acc ${t.accuracy.toFixed(3)}`).join(', ')}` : '') +
          `; encoder in ${flags.out}/encoder`);
      }
    });
}
