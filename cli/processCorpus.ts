import { Command } from 'commander';
import { parseShard, type Shard } from '../pipeline/inputs.ts';
import { processCorpus } from '../recipes/processCorpus.ts';
import { TEXT_TASKS } from '../recipes/textTasks.ts';
import type { TextSkip } from '../text/sources.ts';
import { parseTaskList } from '../tasks/registry.ts';
import { nonNegativeInt, positiveInt, dialogueFormatOption, onInvalidOption } from './options.ts';
import { addNatsOptions, natsOptions, SCALE_OUT_HELP, type NatsFlags } from './natsOptions.ts';

interface ProcessCorpusFlags extends NatsFlags {
  partitions: number;
  queue?: string;
  input?: string[];
  dialogues?: string[];
  tasks: string;
  tokenizer: string;
  out: string;
  shard?: Shard;
  seed: number;
  shardSize?: number;
  threads?: number;
  maxLength: number;
  turns: number;
  format: 'auto' | 'dailydialog' | 'jsonl' | 'text';
  onInvalid: 'skip' | 'fail';
  json?: boolean;
}

/** `tempo-ssl process-corpus`: write pretext-task samples of a corpus as deterministic Arrow IPC shards. */
export function processCorpusCommand(): Command {
  const command = new Command('process-corpus')
    .description(
      'turn a text corpus and/or dialogues into task samples, written as Arrow IPC shards (one task a shard) with a manifest (resumable, deterministic)',
    )
    .option(
      '--input <inputs...>',
      'text corpus: files, folders, globs, .gz or - (read by skipgram, cbow, mlm, nsp, text-cpc; by dialogue-order too unless --dialogues is given)',
    )
    .option('--dialogues <inputs...>', 'dialogue files for dialogue-order (DailyDialog, JSONL or text)')
    .option('--tasks <list>', `tasks to sample (${TEXT_TASKS.join(', ')})`, 'nsp,mlm')
    .requiredOption('--tokenizer <FILE>', 'tokenizer.json to encode with (copied into --out)')
    .requiredOption('--out <DIR>', 'output folder: shard-00000.arrow ..., manifest.json, tokenizer.json')
    .option(
      '--shard <i/N>',
      'worker i of N: take every N-th paragraph or dialogue, starting at i (0-based)',
      parseShard,
    )
    .option('--seed <S>', 'seed of the samplers', nonNegativeInt, 0)
    .option(
      '--shard-size <N>',
      'samples per shard file (default: as many as fill about 4 MB read back, e.g. 74,898 skip-gram rows)',
      positiveInt,
    )
    .option(
      '--threads <N>',
      'threads that tokenize the corpus and write the shards, this one included (default 2 on 2+ cores; 1 = all on one thread, same bytes)',
      positiveInt,
    )
    .option('--max-length <L>', 'tokens per sequence', positiveInt, 32)
    .option('--turns <T>', 'utterances per dialogue-order window', positiveInt, 3)
    .addOption(dialogueFormatOption())
    .addOption(onInvalidOption('binary files, invalid UTF-8 lines, bad dialogue records'))
    .option(
      '--partitions <N>',
      'cut the corpus into N partitions (paragraph or dialogue k goes to k % N), each sampled on its own with a seed from --seed and its index; the shards and manifest.json are the same bytes with or without --queue',
      positiveInt,
      1,
    )
    .option(
      '--queue <URL>',
      'nats://host:4222: put one job per partition on a JetStream work queue for `tempo-ssl worker`s (which must see --out and the inputs at the same paths), wait for all, write manifest.json',
    )
    .option('--json', 'print a JSON summary at the end');
  return addNatsOptions(command)
    .addHelpText('after', SCALE_OUT_HELP)
    .action(async (flags: ProcessCorpusFlags) => {
      const tasks = parseTaskList(flags.tasks, TEXT_TASKS).map((t) => t.name);
      const skipped: Record<string, number> = {};
      const onSkip = (skip: TextSkip): void => {
        skipped[skip.reason] = (skipped[skip.reason] ?? 0) + 1;
      };
      const t0 = performance.now();
      const options = {
        text: flags.input,
        dialogues: flags.dialogues ?? flags.input,
        dialogueFormat: flags.format,
        tasks,
        tokenizer: flags.tokenizer,
        outDir: flags.out,
        shard: flags.shard,
        seed: flags.seed,
        shardSize: flags.shardSize,
        threads: flags.threads,
        taskConfig: { maxLength: flags.maxLength, turns: flags.turns },
        onInvalid: flags.onInvalid,
        onSkip,
        partitions: flags.partitions,
      };
      const result = flags.queue ? await viaQueue(flags.queue, flags, options) : await processCorpus(options);
      const seconds = (performance.now() - t0) / 1000;
      const summary = {
        out: flags.out,
        shards: result.manifest.shards.length,
        written: result.written,
        reused: result.reused,
        counts: result.manifest.counts,
        samples: result.samples,
        corpusTokens: result.manifest.corpusTokens,
        skipped,
        seconds,
      };
      if (flags.json) console.log(JSON.stringify(summary));
      else {
        const counts = Object.entries(result.manifest.counts)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ');
        console.log(
          `${result.manifest.shards.length} shard(s) in ${flags.out} (${result.written} written, ${result.reused} kept from an earlier run); samples: ${counts || 'none'}`,
        );
        const skips = Object.entries(skipped)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ');
        if (skips) console.log(`skipped: ${skips}`);
        if (result.manifest.corpusTokens !== undefined)
          console.log(`word2vec negatives and subsampling from ${result.manifest.corpusTokens} counted corpus tokens`);
        for (const [task, s] of Object.entries(result.samples)) {
          if (typeof s.positives === 'number')
            console.log(`${task}: ${s.positives} positive / ${s.negatives} negative`);
          else if (typeof s.baseline === 'number')
            console.log(
              `${task}: most-frequent-token baseline ${s.baseline.toFixed(3)} (always "${s.mostFrequentToken}")`,
            );
        }
      }
    });
}

/** process-corpus --queue: submit one job per partition and wait for the workers. */
async function viaQueue(
  url: string,
  flags: ProcessCorpusFlags,
  options: Parameters<typeof processCorpus>[0],
): Promise<Awaited<ReturnType<typeof processCorpus>>> {
  // The NATS client is loaded only by runs that use a broker.
  const { connectBroker } = await import('../recipes/natsConnection.ts');
  const { submitCorpusJobs } = await import('../recipes/corpusJobs.ts');
  const broker = await connectBroker(natsOptions(url, flags, 'tempo-ssl process-corpus'));
  try {
    return await submitCorpusJobs(broker, {
      ...options,
      partitions: flags.partitions,
      onPartition: (p, worker) => {
        if (!flags.json) console.error(`partition ${p} of ${flags.partitions} done by ${worker}`);
      },
    });
  } finally {
    await broker.close();
  }
}
