import { Command, InvalidArgumentError, Option } from 'commander';
import { parseClassList } from '../recipes/imageLabels.ts';
import { expandInputs, parseShard, type Shard } from '../pipeline/inputs.ts';
import { pretrainVideo } from '../recipes/pretrainVideo.ts';
import { pretrainImages } from '../recipes/pretrainImages.ts';
import { pretrainText, type TextPretrainResult } from '../recipes/pretrainText.ts';
import { TEXT_TASKS } from '../recipes/textTasks.ts';
import { DEFAULT_DIALOGUE_VARIANT, DIALOGUE_VARIANTS, type DialogueVariant } from '../tasks/dialogue/utteranceOrder.ts';
import type { TextSkip } from '../text/sources.ts';
import { OptionError, TempoError } from '../core/errors.ts';
import type { KnnMonitor, OptimizerName, TrainResult } from '../training/trainer.ts';
import { parseSchedule, type LearningRateSchedule } from '../training/schedules.ts';
import { knnMonitor } from '../evaluation/knnMonitor.ts';
import { labelledSetKind, readLabelledSet } from '../evaluation/readLabelledSet.ts';
import { parseTaskList, tasksReading } from '../tasks/registry.ts';
import { reportHook, writeReport } from '../recipes/report/writeReport.ts';
import { stopSignal, useBackend } from './backend.ts';
import { addNatsOptions, natsOptions, SCALE_OUT_HELP, type NatsFlags } from './natsOptions.ts';
import {
  collectViewGroup,
  nonNegativeInt,
  positiveInt,
  positiveNumber,
  dialogueFormatOption,
  onInvalidOption,
} from './options.ts';

interface PretrainFlags extends NatsFlags {
  from?: string;
  stream?: string;
  ackWait: number;
  idleExit?: number;
  sampleLog?: string;
  video?: string[];
  images?: string[];
  views?: string[][];
  text?: string[];
  dialogues?: string[];
  shards?: string;
  tokenizer?: string;
  vocabSize: number;
  tokenizerModel?: 'word' | 'wordpiece';
  maxLength: number;
  shuffleBuffer: number;
  format: 'auto' | 'dailydialog' | 'jsonl' | 'text';
  onInvalid: 'skip' | 'fail';
  dialogueVariant?: DialogueVariant;
  tasks?: string;
  steps?: number;
  shard?: Shard;
  onBadInput: 'skip' | 'fail';
  frameCache: number;
  sampleThreads: boolean;
  stallTimeout?: number;
  batch: number;
  out: string;
  checkpointEvery: number;
  resume?: boolean;
  force?: boolean;
  seed: number;
  optimizer: OptimizerName;
  lr?: number;
  lrSchedule: LearningRateSchedule;
  warmupSteps: number;
  momentumSchedule: LearningRateSchedule;
  monitor?: string;
  monitorEvery: number;
  monitorLimit: number;
  width: number;
  height: number;
  fps?: number;
  gray?: boolean;
  featureSize: number;
  json?: boolean;
  labels?: string;
  labelledFraction?: number;
  classes?: number[];
  report?: boolean;
}

/** `tempo-ssl pretrain`: pretrain the shared encoder on videos with one or more pretext tasks. */
export function pretrainCommand(): Command {
  const command = new Command('pretrain')
    .description(
      'pretrain a frame encoder on videos, or a text encoder on a corpus or dialogues, with pretext tasks, checkpointing as it goes',
    )
    .option('--video <inputs...>', 'video files, folders, globs, live URLs (http, rtsp, udp, tcp) or - for stdin')
    .option(
      '--views <cameras>',
      'synchronized cameras of one recording, comma-separated files (or a folder or glob of them), e.g. cam1.mp4,cam2.mp4; repeat for more recordings (task tcn: multi-view)',
      collectViewGroup,
    )
    .option(
      '--images <inputs...>',
      `still images: PNG/JPEG files, folders of them (recursive), quoted globs, or IDX files (.gz too, e.g. MNIST); each resized to cover --width x --height and centre-cropped (tasks that read single images: ${tasksReading('images').join(', ')})`,
    )
    .option(
      '--text <corpus...>',
      'text corpus: files, folders, globs, .gz or - (tasks skipgram, cbow, mlm, nsp, text-cpc)',
    )
    .option('--dialogues <files...>', 'dialogue files: DailyDialog, JSONL or text (task dialogue-order)')
    .option('--shards <DIR>', 'samples written by process-corpus, instead of --text / --dialogues')
    .option(
      '--tokenizer <FILE>',
      'tokenizer.json for text runs (default: train one on the corpus, see --tokenizer-model; saved in --out)',
    )
    .option('--vocab-size <V>', 'vocabulary size of a tokenizer trained here', positiveInt, 8000)
    .addOption(
      new Option(
        '--tokenizer-model <kind>',
        'tokenizer trained here: word (dialogue-only runs) or wordpiece (default otherwise)',
      ).choices(['word', 'wordpiece']),
    )
    .option('--max-length <L>', 'tokens per sentence or utterance (text runs)', positiveInt, 32)
    .option(
      '--shuffle-buffer <N>',
      'text runs: samples held by the seeded shuffle buffer before batching (1 keeps the corpus order)',
      positiveInt,
      4096,
    )
    .addOption(dialogueFormatOption())
    .addOption(
      new Option(
        '--dialogue-variant <name>',
        `dialogue-order: pairs (Wu et al.: triples of utterance pairs beside reference triples) or utterances (windows of single turns); default ${DEFAULT_DIALOGUE_VARIANT}, recorded in run.json for score-dialogue`,
      ).choices([...DIALOGUE_VARIANTS]),
    )
    .addOption(onInvalidOption('text runs: binary files, invalid UTF-8 lines, bad dialogue records'))
    .option(
      '--tasks <list>',
      `tasks with optional loss weights, e.g. order,frame-sim,cpc:0.5 (video: ${tasksReading('frames', 'views', 'images').join(', ')}, default order, tcn with --views; images: ${tasksReading('images').join(', ')}, default rotation; text: ${TEXT_TASKS.join(', ')}, default nsp,mlm, or dialogue-order with --dialogues)`,
    )
    .option(
      '--steps <N>',
      'optimizer steps in total (default 1000; with a live input, until stopped by SIGINT/SIGTERM)',
      positiveInt,
    )
    .option(
      '--shard <i/N>',
      'take only shard i of N of the expanded inputs (0-based), for parallel workers',
      parseShard,
    )
    .addOption(
      new Option(
        '--on-bad-input <mode>',
        'skip: count, name and leave out videos or images that cannot be read; fail: stop with the error',
      )
        .choices(['skip', 'fail'])
        .default('fail'),
    )
    .option(
      '--frame-cache <MB>',
      'decoded frames kept in memory so later epochs skip ffmpeg (0: decode every epoch)',
      nonNegativeInt,
      256,
    )
    .option(
      '--no-sample-threads',
      'video files: make samples on the training thread instead of one worker thread per task (same samples)',
    )
    .option('--stall-timeout <ms>', 'a live input that sends no frame this long fails (default 15000)', positiveInt)
    .option('--batch <B>', 'samples per task per step', positiveInt, 16)
    .requiredOption('--out <DIR>', 'run folder: checkpoint/, encoder/, metrics.jsonl, run.json')
    .option('--checkpoint-every <K>', 'write a checkpoint every K steps (and at the end)', positiveInt, 100)
    .option('--resume', 'continue from the checkpoint in --out')
    .option('--force', 'start afresh in an --out folder that holds a run, replacing it')
    .option('--seed <S>', 'seed of weights and samplers', nonNegativeInt, 0)
    .addOption(
      new Option('--optimizer <name>', 'adam, or lars (momentum SGD with layer-wise trust ratios, as SimCLR)')
        .choices(['adam', 'lars'])
        .default('adam'),
    )
    .option('--lr <rate>', 'peak learning rate (default 1e-3 with adam, 0.3 x batch / 256 with lars)', positiveNumber)
    .option(
      '--lr-schedule <kind>',
      'constant, or cosine (half a cosine to 0 at the last step)',
      (v: string) => parseSchedule('--lr-schedule', v),
      'constant',
    )
    .option('--warmup-steps <N>', 'steps of linear learning-rate warm-up', nonNegativeInt, 0)
    .option(
      '--momentum-schedule <kind>',
      'EMA momentum of momentum encoders (moco): constant, or cosine from its base to 1 (BYOL)',
      (v: string) => parseSchedule('--momentum-schedule', v),
      'constant',
    )
    .option(
      '--monitor <set>',
      'frames/images: a held-out labelled set (as evaluate --train takes it) for an online weighted kNN (k=20), logged as knnAccuracy',
    )
    .option('--monitor-every <K>', 'steps between kNN monitor scores', positiveInt, 100)
    .option(
      '--monitor-limit <N>',
      'labelled items the kNN monitor reads (half memory, half queries)',
      positiveInt,
      2000,
    )
    .option('--width <W>', 'frame width the encoder sees', positiveInt, 64)
    .option('--height <H>', 'frame height the encoder sees', positiveInt, 64)
    .option('--fps <F>', 'resample videos to this frame rate', positiveNumber)
    .option('--gray', 'train on gray frames')
    .option('--feature-size <D>', 'size of the encoder output', positiveInt, 64)
    .option('--json', 'print a JSON summary at the end')
    .option(
      '--report',
      'rewrite <out>/report.html (settings and curves) at every checkpoint, and the full report (with the embedding map) at the end; see tempo-ssl report',
    )
    .option(
      '--labels <FILE>',
      'images: IDX labels file (.gz too), one label per image of --images in order, for --tasks supervised (an image folder is labelled by its class subfolders)',
    )
    .option(
      '--labelled-fraction <F>',
      'images: share of each class whose labels the supervised task sees (a seeded draw, S4L), e.g. 0.1',
      fractionUpToOne,
    )
    .option(
      '--classes <list>',
      'images: train on these classes only, e.g. 0-4 (the base classes of few-shot training; every task)',
      parseClassList,
    )
    .option(
      '--from <URL>',
      "nats://host:4222: train on the samples tempo-ssl produce publishes to --stream (frame tasks; give the producers' --width/--height/--gray); a batch is acknowledged only after the checkpoint holding its step is written",
    )
    .option('--stream <NAME>', 'with --from: the JetStream stream of the producers')
    .option(
      '--ack-wait <S>',
      'with --from: seconds before the server redelivers samples of a trainer that died',
      positiveNumber,
      60,
    )
    .option(
      '--idle-exit <S>',
      'with --from: end the run (checkpointing) after S seconds without samples',
      positiveNumber,
    )
    .option(
      '--sample-log <FILE>',
      "with --from: append 'train STEP ID' and 'ack STEP ID' lines (producers' sample ids)",
    );
  return addNatsOptions(command)
    .addHelpText('after', SCALE_OUT_HELP)
    .action(async (flags: PretrainFlags, command: Command) => {
      if (flags.from !== undefined) return pretrainFromAction(flags, command);
      const kinds = [
        flags.video && '--video',
        flags.images && '--images',
        flags.views && '--views',
        (flags.text || flags.dialogues) && '--text/--dialogues',
        flags.shards && '--shards',
      ].filter(Boolean);
      if (kinds.length !== 1) {
        throw new OptionError(
          'pretrain',
          kinds.length === 0 ? 'no input' : kinds.join(' and '),
          'given exactly one source: --video <inputs...>, --images <inputs...>, --views <cameras> (repeatable), --text <corpus...> and/or --dialogues <file>, or --shards <DIR>',
        );
      }
      if (flags.images) return pretrainImagesAction(flags, command);
      for (const [flag, value] of [
        ['--labels', flags.labels],
        ['--labelled-fraction', flags.labelledFraction],
        ['--classes', flags.classes],
      ] as const)
        if (value !== undefined)
          throw new OptionError(flag, value, 'left out without --images (labels are for images)');
      if (!flags.video && !flags.views) return pretrainTextAction(flags, command);
      const tasks = parseTaskList(
        flags.tasks ?? (flags.views ? 'tcn' : 'order'),
        tasksReading('frames', 'views', 'images'),
      );
      const specs = flags.video ? await expandInputs(flags.video, { shard: flags.shard }) : [];
      const videos = specs.map((spec) => spec.input);
      const views = flags.views && (await expandViewGroups(flags.views, flags.shard));
      // A live stream has no end: without --steps the run goes on until SIGINT or SIGTERM checkpoints and stops it.
      const endless = flags.steps === undefined && specs.some((spec) => spec.live);
      const steps = flags.steps ?? (endless ? Number.MAX_SAFE_INTEGER : 1000);
      await useBackend(command);
      const result = await pretrainVideo({
        videos,
        views,
        tasks,
        steps,
        onBadInput: flags.onBadInput,
        frameCacheMB: flags.frameCache,
        sampleThreads: flags.sampleThreads,
        live: flags.stallTimeout !== undefined ? { stallTimeoutMs: flags.stallTimeout } : undefined,
        ...runOptions(flags),
        knnMonitor: await monitorOption(flags),
        format: { width: flags.width, height: flags.height, fps: flags.fps, gray: flags.gray },
        encoder: { featureSize: flags.featureSize },
        // A run without an end has no bar to fill: it logs a line per checkpoint instead.
        progress: flags.json || endless ? 'none' : 'auto',
        onStep:
          endless && !flags.json
            ? (m) =>
                m.step % flags.checkpointEvery === 0 &&
                process.stderr.write(
                  `step ${m.step}  loss ${m.loss.toFixed(4)}  ${m.samplesPerSecond.toFixed(0)} samples/s\n`,
                )
            : undefined,
        signal: stopSignal(),
      });
      result.encoder.dispose();
      requireProgress(result, steps);
      await finalReport(flags);
      const summary = {
        steps: result.steps,
        startStep: result.startStep,
        stoppedBy: result.stoppedBy,
        last: result.last,
        out: flags.out,
        badInputs: result.badInputs,
      };
      if (flags.json) console.log(JSON.stringify(summary));
      else {
        console.log(`${describeRun(result)}; encoder in ${flags.out}/encoder`);
        if (result.badInputs.length > 0) {
          console.log(`skipped ${result.badInputs.length} bad input(s):`);
          for (const bad of result.badInputs) console.log(`  ${bad.input}: ${bad.error}`);
        }
      }
    });
}

/**
 * Each `--views` group's entries expanded (a folder or glob gives the cameras in it, sorted), keeping shard `i/N`'s
 * groups only (a recording is not split between workers).
 */
async function expandViewGroups(groups: string[][], shard: Shard | undefined): Promise<string[][]> {
  const expanded: string[][] = [];
  for (const group of groups) expanded.push((await expandInputs(group)).map((spec) => spec.input));
  return shard ? expanded.filter((_, i) => i % shard.count === shard.index) : expanded;
}

/** `pretrain --from nats://... --stream NAME`: the frame encoder on samples that producers publish. */
async function pretrainFromAction(flags: PretrainFlags, command: Command): Promise<void> {
  if (!flags.stream) throw new OptionError('--stream', undefined, 'the stream name the producers publish to');
  if (flags.video || flags.images || flags.views || flags.text || flags.dialogues || flags.shards)
    throw new OptionError('--from', flags.from, 'the only source of the run (the producers read the videos)');
  const tasks = parseTaskList(flags.tasks ?? 'order', tasksReading('frames'));
  const steps = flags.steps ?? 1000;
  await useBackend(command);
  // The NATS client is loaded only by runs that read from a broker.
  const { connectBroker } = await import('../recipes/natsConnection.ts');
  const { pretrainFromBroker } = await import('../recipes/pretrainBroker.ts');
  const broker = await connectBroker(natsOptions(flags.from!, flags, 'tempo-ssl pretrain'));
  try {
    const result = await pretrainFromBroker({
      broker,
      stream: flags.stream,
      tasks,
      steps,
      ...runOptions(flags),
      format: { width: flags.width, height: flags.height, fps: flags.fps, gray: flags.gray },
      encoder: { featureSize: flags.featureSize },
      ackWaitSeconds: flags.ackWait,
      idleExitSeconds: flags.idleExit,
      sampleLog: flags.sampleLog,
      progress: flags.json ? 'none' : 'auto',
      signal: stopSignal(),
    });
    result.encoder.dispose();
    const summary = {
      steps: result.steps,
      startStep: result.startStep,
      stoppedBy: result.stoppedBy,
      last: result.last,
      out: flags.out,
    };
    if (flags.json) console.log(JSON.stringify(summary));
    else console.log(`${describeRun(result)}; encoder in ${flags.out}/encoder`);
  } finally {
    await broker.close();
  }
}

/** `pretrain --images`: the frame encoder on still images with tasks that read single images. */
async function pretrainImagesAction(flags: PretrainFlags, command: Command): Promise<void> {
  // Every task name is accepted here so that a video task is refused with why (it needs time), not as unknown.
  const tasks = parseTaskList(flags.tasks ?? 'rotation');
  if (flags.fps !== undefined) throw new OptionError('--fps', flags.fps, 'left out with --images (still images)');
  if (flags.shard !== undefined) throw new OptionError('--shard', flags.shard, 'left out with --images');
  const steps = flags.steps ?? 1000;
  await useBackend(command);
  const result = await pretrainImages({
    images: flags.images!,
    tasks,
    steps,
    onBadInput: flags.onBadInput,
    ...runOptions(flags),
    knnMonitor: await monitorOption(flags),
    format: { width: flags.width, height: flags.height, gray: flags.gray },
    encoder: { featureSize: flags.featureSize },
    labels: { labels: flags.labels, labelledFraction: flags.labelledFraction, classes: flags.classes },
    progress: flags.json ? 'none' : 'auto',
    signal: stopSignal(),
  });
  result.encoder.dispose();
  requireProgress(result, steps);
  await finalReport(flags);
  const skipped = result.badInputs.length;
  if (flags.json) {
    const { steps: done, startStep, stoppedBy, last, badInputs, imageCount } = result;
    return console.log(
      JSON.stringify({
        steps: done,
        startStep,
        stoppedBy,
        last,
        out: flags.out,
        images: imageCount,
        skipped,
        badInputs,
      }),
    );
  }
  console.log(`${describeRun(result)}; ${result.imageCount} images; encoder in ${flags.out}/encoder`);
  if (skipped > 0) {
    console.log(`skipped ${skipped} bad image(s):`);
    for (const bad of result.badInputs) console.log(`  ${bad.error}`);
  }
}

/** `pretrain --text / --dialogues / --shards`: the text encoder with text and dialogue tasks. */
async function pretrainTextAction(flags: PretrainFlags, command: Command): Promise<void> {
  const tasks = parseTaskList(
    flags.tasks ?? (flags.dialogues && !flags.text ? 'dialogue-order' : 'nsp,mlm'),
    TEXT_TASKS,
  );
  if (flags.monitor !== undefined)
    throw new OptionError('--monitor', flags.monitor, 'left out with text runs (a labelled set of images or frames)');
  await useBackend(command);
  const skipped: Record<string, number> = {};
  // The corpus is read more than once (tokenizer training, then each task's epochs): count each bad line once.
  const seen = new Set<string>();
  const onSkip = (skip: TextSkip): void => {
    const key = `${skip.reason}\0${skip.source}\0${skip.line}`;
    if (seen.has(key)) return;
    seen.add(key);
    skipped[skip.reason] = (skipped[skip.reason] ?? 0) + 1;
  };
  const result = await pretrainText({
    text: flags.text,
    dialogues: flags.dialogues,
    shards: flags.shards,
    dialogueFormat: flags.format,
    dialogueVariant: flags.dialogueVariant,
    onInvalid: flags.onInvalid,
    onSkip,
    shard: flags.shard,
    tokenizer: flags.tokenizer,
    vocabSize: flags.vocabSize,
    tokenizerModel: flags.tokenizerModel,
    taskConfig: { maxLength: flags.maxLength, embeddingSize: flags.featureSize },
    hiddenSize: flags.featureSize,
    shuffleBuffer: flags.shuffleBuffer,
    tasks,
    steps: flags.steps ?? 1000,
    ...runOptions(flags),
    progress: flags.json ? 'none' : 'auto',
    onTokenizerProgress: flags.json
      ? undefined
      : ({ bytes, lines }) =>
          process.stderr.write(`training the tokenizer: ${(bytes / 1e6).toFixed(1)} MB, ${lines} lines read\n`),
    signal: stopSignal(),
  });
  result.encoder.dispose();
  requireProgress(result, flags.steps ?? 1000);
  await finalReport(flags);
  const summary = {
    steps: result.steps,
    startStep: result.startStep,
    stoppedBy: result.stoppedBy,
    last: result.last,
    out: flags.out,
    vocabSize: result.tokenizer.vocabSize,
    skipped,
    samples: result.samples,
    corpusTokens: result.corpusTokens,
  };
  if (flags.json) return console.log(JSON.stringify(summary));
  console.log(`${describeRun(result)}; encoder, heads and tokenizer in ${flags.out}`);
  for (const line of describeSamples(result)) console.log(line);
  const skips = Object.entries(skipped)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  if (skips) console.log(`skipped: ${skips}`);
}

/** A share in (0, 1]. */
function fractionUpToOne(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError(`expected a share in (0, 1], e.g. 0.1; got "${value}".`);
  return n;
}

/** The trainer options every kind of run takes from the same flags. */
function runOptions(flags: PretrainFlags) {
  return {
    batchSize: flags.batch,
    optimizer: flags.optimizer,
    learningRate: flags.lr,
    lrSchedule: flags.lrSchedule,
    warmupSteps: flags.warmupSteps,
    momentumSchedule: flags.momentumSchedule,
    seed: flags.seed,
    outDir: flags.out,
    checkpointEvery: flags.checkpointEvery,
    resume: flags.resume,
    force: flags.force,
    hooks: flags.report ? [reportHook({ run: flags.out, every: flags.checkpointEvery })] : undefined,
  };
}

/**
 * The `--monitor` kNN monitor: the labelled set read once, at the run's frame size, split into memory and queries.
 * The set should be held out of training (the monitor measures what transfers, not what was seen).
 */
async function monitorOption(flags: PretrainFlags): Promise<KnnMonitor | undefined> {
  if (flags.monitor === undefined) return undefined;
  labelledSetKind(flags.monitor, '--monitor');
  const inputShape = [flags.height, flags.width, flags.gray ? 1 : 3];
  const set = await readLabelledSet(flags.monitor, '--monitor', {
    inputShape,
    format: { width: flags.width, height: flags.height, fps: flags.fps, gray: flags.gray },
    limit: flags.monitorLimit,
  });
  return knnMonitor(set, { every: flags.monitorEvery, seed: flags.seed });
}

/** `--report`: the full report once the run has ended (its path on stderr, so --json stays one line). */
async function finalReport(flags: PretrainFlags): Promise<void> {
  if (!flags.report) return;
  const { path } = await writeReport({ run: flags.out });
  process.stderr.write(`report: ${path}\n`);
}

/** A run that took no step (stopped before its first one) did not succeed, unless it had nothing left to do. */
function requireProgress(result: TrainResult, steps: number): void {
  if (result.steps > result.startStep || result.startStep >= steps) return;
  throw new TempoError(
    `stopped by ${result.stoppedBy} before the first step: nothing was trained (run the command again to start)`,
  );
}

/** One line on how a run ended: steps, why it stopped, the last loss and per-task accuracy. */
function describeRun(result: TrainResult): string {
  const last = result.last;
  return (
    `pretrained ${result.steps} steps (from ${result.startStep}, stopped by ${result.stoppedBy})` +
    (last
      ? `; last loss ${last.loss.toFixed(4)}, ${Object.entries(last.tasks)
          .map(([n, t]) => `${n} acc ${t.accuracy.toFixed(3)}`)
          .join(', ')}`
      : '')
  );
}

/** Lines on what the text samplers emitted: NSP's label balance, the most-frequent-token baselines, word2vec's counts. */
function describeSamples(result: TextPretrainResult): string[] {
  const lines: string[] = [];
  if (result.corpusTokens !== undefined)
    lines.push(`word2vec negatives (unigram^0.75) and subsampling from ${result.corpusTokens} counted corpus tokens`);
  for (const [task, s] of Object.entries(result.samples)) {
    const accuracy = result.last?.tasks[task]?.accuracy;
    if (typeof s.positives === 'number' && typeof s.negatives === 'number')
      lines.push(`${task}: ${s.emitted} samples emitted, ${s.positives} positive / ${s.negatives} negative`);
    else if (typeof s.baseline === 'number')
      lines.push(
        `${task}: last acc ${accuracy?.toFixed(3) ?? '-'} vs most-frequent-token baseline ${s.baseline.toFixed(3)} ` +
          `(always "${s.mostFrequentToken}", over ${s.predictions} targets of ${s.emitted} samples emitted)`,
      );
  }
  return lines;
}
