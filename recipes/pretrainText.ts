import type * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Observable } from 'rxjs';
import type { TaskChoice } from '../tasks/registry.ts';
import type { Sample } from '../pipeline/sample.ts';
import { buildTextEncoder, type TextEncoderOptions } from '../models/textEncoder.ts';
import { loadTokenizer } from '../text/tokenizers/loadTokenizer.ts';
import type { Tokenizer } from '../text/tokenizers/Tokenizer.ts';
import { writeJson } from '../core/atomicWrite.ts';
import { OptionError } from '../core/errors.ts';
import { saveModel } from '../models/modelIO.ts';
import type { Rng } from '../core/rng.ts';
import { shuffleBuffer } from '../core/shuffleBuffer.ts';
import { train, type RunOptions, type TrainResult } from '../training/trainer.ts';
import type { Valve } from '../core/valve.ts';
import type { TextSourceOptions } from '../text/sources.ts';
import {
  buildTextTask,
  checkSources,
  countCorpusTokens,
  needTokenCounts,
  TEXT_TASKS,
  TextSampleTallies,
  textTaskSamples,
  type TextSampleSummary,
  type TextTask,
} from './textTasks.ts';
import {
  configureDialogueOrder,
  DEFAULT_DIALOGUE_VARIANT,
  DIALOGUE_VARIANTS,
  type DialogueVariant,
} from '../tasks/dialogue/utteranceOrder.ts';
import { resolveTextTaskConfig } from '../tasks/text/textTaskConfig.ts';
import type { TextTaskConfig } from '../tasks/text/textTaskConfig.ts';
import { trainCorpusTokenizer, type CorpusTokenizerOptions } from './corpusTokenizer.ts';
import { finishRunFolder, prepareRunFolder } from './runFolder.ts';

/** Options of {@link pretrainText}. */
export interface TextPretrainOptions extends RunOptions, TextSourceOptions {
  /** Tasks and their loss weights (see `parseTaskList`); text tasks only. */
  tasks: TaskChoice[];
  /** A process-corpus output folder to read samples from instead of `text` / `dialogues` (see pipeline/shards.ts). */
  shards?: string;
  /** A tokenizer or a tokenizer.json path. Default: the run folder's tokenizer.json, else one trained on the corpus. */
  tokenizer?: Tokenizer | string;
  /** Vocabulary size of a tokenizer trained here. Default 8000. */
  vocabSize?: number;
  /** Kind of a tokenizer trained here (see `CorpusTokenizerOptions.model`). */
  tokenizerModel?: 'wordpiece' | 'word';
  /** Sequence length, dialogue window and embedding size of the tasks. */
  taskConfig?: Partial<TextTaskConfig>;
  /** Hidden size of the encoder's GRU. Default 64. */
  hiddenSize?: number;
  /**
   * Samples held by the seeded shuffle buffer between each task's sampler and the batcher. Samplers emit the
   * samples of one paragraph or one dialogue together, and batches of neighbours train far worse (bench/textTasks.ts
   * found it on Gutenberg). Default 4096; 1 keeps the corpus order.
   */
  shuffleBuffer?: number;
  /** Called about once a second while a tokenizer is trained on the corpus (the long preprocessing before step 1). */
  onTokenizerProgress?: CorpusTokenizerOptions['onProgress'];
  /** Start afresh in an `outDir` that holds a run, removing its run files (see `prepareRunFolder`). */
  force?: boolean;
  /** The formulation of dialogue-order (see `DialogueVariant`). Default `DEFAULT_DIALOGUE_VARIANT`. */
  dialogueVariant?: DialogueVariant;
}

/** What a text run folder's `run.json` records, so that `--resume` and `score-dialogue` rebuild the same model. */
export interface TextRunInfo {
  kind: 'text';
  /** The tokenizer file, relative to the run folder. */
  tokenizer: string;
  encoder: TextEncoderOptions;
  taskConfig: TextTaskConfig;
  tasks: TaskChoice[];
  text: string[];
  dialogues: string[];
  shards?: string;
  /** Heads saved for later use (scoring), each in `heads/<task>/`. */
  heads: string[];
  /** The variant dialogue-order trained with, when the run trained it; absent in runs before it was recorded (`utterances`). */
  dialogueVariant?: DialogueVariant;
}

/** What {@link pretrainText} returns. */
export interface TextPretrainResult extends TrainResult {
  encoder: tf.LayersModel;
  tokenizer: Tokenizer;
  /**
   * Per task, the samples its sampler (or the shards) emitted in this process, over every epoch, prefetched ones
   * included: `emitted`, and the task's tally: NSP's `positives` and `negatives`; MLM's and text-CPC's
   * `baseline` (the accuracy of always answering the most frequent target, `mostFrequentToken`) over
   * `predictions` targets, to read beside their pretext accuracy.
   */
  samples: Record<string, TextSampleSummary>;
  /**
   * Tokens of the corpus counted for word2vec's negatives and subsampling, here or by the process-corpus run that
   * wrote the shards (absent when no task needed them).
   */
  corpusTokens?: number;
}

/**
 * Pretrains the shared text encoder (buildTextEncoder) with text and dialogue tasks on one trainer: picks or
 * trains a tokenizer (saved as `outDir/tokenizer.json`), counts the corpus's tokens when a task draws words by
 * frequency (skip-gram, CBOW: one more pass over the corpus), builds each task for them, streams samples from the
 * corpus, the dialogues or process-corpus shards, and trains. Writes `run.json`, `encoder/` and each head in
 * `heads/<task>/` (score-dialogue reads `heads/dialogue-order/`).
 *
 * @example
 * await pretrainText({ text: ['books/'], tasks: parseTaskList('nsp,mlm'), steps: 200, batchSize: 32, outDir: 'runs/t' });
 */
export async function pretrainText(options: TextPretrainOptions): Promise<TextPretrainResult> {
  const notText = options.tasks.filter((t) => !TEXT_TASKS.includes(t.name)).map((t) => t.name);
  if (notText.length > 0) throw new OptionError('--tasks', notText.join(','), `text tasks: ${TEXT_TASKS.join(', ')}`);
  if (options.tokenizerModel && (options.tokenizer || options.shards)) {
    throw new OptionError(
      '--tokenizer-model',
      options.tokenizerModel,
      `left out: the tokenizer comes from ${options.tokenizer ? '--tokenizer' : '--shards'}, and only a tokenizer trained here has a kind to choose`,
    );
  }
  const bufferSize = options.shuffleBuffer ?? 4096;
  if (!Number.isInteger(bufferSize) || bufferSize < 1)
    throw new OptionError('--shuffle-buffer', bufferSize, 'a positive integer (1 keeps the corpus order)');
  const dialogueVariant = await resolveDialogueVariant(options);
  // Before the tokenizer is trained: a folder that cannot be used should not cost minutes first.
  const folder = options.outDir ? await prepareRunFolder(options.outDir, options) : undefined;
  const { readShardManifest, shardSamples } = await import('./shards.ts');
  const manifest = options.shards ? await readShardManifest(options.shards) : undefined;
  const missing = manifest ? options.tasks.filter((t) => !manifest.counts[t.name]).map((t) => t.name) : [];
  if (missing.length > 0)
    throw new OptionError(
      '--tasks',
      missing.join(','),
      `tasks with samples in ${options.shards} (it has ${Object.keys(manifest!.counts).join(', ')})`,
    );
  const taskConfig = manifest ? manifest.taskConfig : resolveTextTaskConfig(options.taskConfig);
  const tokenizer = await resolveTokenizer(options, manifest && join(options.shards!, manifest.tokenizer.file));
  const info: TextRunInfo = {
    kind: 'text',
    tokenizer: 'tokenizer.json',
    encoder: {
      vocabSize: tokenizer.vocabSize,
      maxLength: taskConfig.maxLength,
      embeddingSize: taskConfig.embeddingSize,
      hiddenSize: options.hiddenSize ?? 64,
      seed: options.seed ?? 0,
    },
    taskConfig,
    tasks: options.tasks,
    text: [...(options.text ?? [])],
    dialogues: [...(options.dialogues ?? [])],
    shards: options.shards,
    heads: options.tasks.map((t) => t.name),
    dialogueVariant,
  };
  if (!options.shards) for (const { name } of options.tasks) checkSources(name, options);
  // Whole-corpus counts for word2vec's negatives and subsampling (shards hold samples drawn with them already).
  const tokenCounts =
    !options.shards && needTokenCounts(options.tasks.map((t) => t.name))
      ? await countCorpusTokens(tokenizer, options)
      : undefined;
  const tallies = new TextSampleTallies(tokenizer);
  const encoder = buildTextEncoder(info.encoder);
  const tasks = options.tasks.map(({ name, weight }) => {
    const made: TextTask =
      name === 'dialogue-order' && dialogueVariant
        ? { reads: 'dialogues', task: configureDialogueOrder(dialogueVariant, tokenizer, taskConfig) }
        : buildTextTask(name, tokenizer, taskConfig, tokenCounts);
    // The buffer's rng is forked before the sampler draws, so an epoch's order is a function of its seed (exact resume).
    const samples = (_epoch: number, valve: Valve, rng: Rng): Observable<Sample> => {
      const shuffle = shuffleBuffer<Sample>({ rng: rng.fork(), bufferSize });
      return (
        options.shards
          ? shardSamples(options.shards, name, { valve })
          : textTaskSamples(made, tokenizer, options, rng, valve)
      ).pipe(tallies.count(made.task), shuffle);
    };
    return { task: made.task, weight, samples };
  });
  if (options.outDir) {
    await mkdir(options.outDir, { recursive: true });
    await tokenizer.save(join(options.outDir, info.tokenizer));
    await writeJson(join(options.outDir, 'run.json'), info);
  }
  const result = await train({ ...options, encoder, itemShape: [taskConfig.maxLength], tasks });
  const inputs = [...(options.text ?? []), ...(options.dialogues ?? []), ...(options.shards ? [options.shards] : [])];
  await finishRunFolder(folder, result, inputs, 'text samples').catch((error: unknown) => {
    encoder.dispose();
    Object.values(result.heads).forEach((h) => h.dispose());
    throw error;
  });
  if (options.outDir) {
    for (const [name, head] of Object.entries(result.heads)) await saveModel(head, join(options.outDir, 'heads', name));
  }
  return {
    ...result,
    encoder,
    tokenizer,
    samples: tallies.summary(),
    corpusTokens: tokenCounts ? tokenCounts.reduce((a, b) => a + b, 0) : manifest?.corpusTokens,
  };
}

/**
 * The dialogue-order variant of a run that trains dialogue-order (undefined otherwise): as given, else the one the
 * resumed run trained, else the default. Shards hold samples of the variant process-corpus made them with, the
 * default: another one is refused, and so is one other than a resumed run's.
 */
async function resolveDialogueVariant(options: TextPretrainOptions): Promise<DialogueVariant | undefined> {
  const { dialogueVariant } = options;
  if (dialogueVariant !== undefined && !DIALOGUE_VARIANTS.includes(dialogueVariant))
    throw new OptionError('--dialogue-variant', dialogueVariant, DIALOGUE_VARIANTS.join(' or '));
  if (!options.tasks.some((t) => t.name === 'dialogue-order')) return undefined;
  const saved =
    options.resume && options.outDir && existsSync(join(options.outDir, 'run.json'))
      ? await readTextRunInfo(options.outDir)
      : undefined;
  // A run from before the variant was recorded trained `utterances`.
  const resumed = saved?.tasks.some((t) => t.name === 'dialogue-order')
    ? (saved.dialogueVariant ?? 'utterances')
    : undefined;
  if (resumed && dialogueVariant !== undefined && dialogueVariant !== resumed)
    throw new OptionError(
      '--dialogue-variant',
      dialogueVariant,
      `${resumed}, the variant of the run resumed in ${options.outDir} (or start afresh with --force)`,
    );
  if (options.shards && dialogueVariant !== undefined && dialogueVariant !== DEFAULT_DIALOGUE_VARIANT)
    throw new OptionError(
      '--dialogue-variant',
      dialogueVariant,
      `left out with --shards: process-corpus makes dialogue-order samples of the default variant (${DEFAULT_DIALOGUE_VARIANT})`,
    );
  return dialogueVariant ?? resumed ?? DEFAULT_DIALOGUE_VARIANT;
}

/** The tokenizer of a run: given, the shards', the run folder's (on resume), or trained on the corpus. */
async function resolveTokenizer(options: TextPretrainOptions, fromShards: string | undefined): Promise<Tokenizer> {
  if (typeof options.tokenizer === 'object') return options.tokenizer;
  if (typeof options.tokenizer === 'string') return loadTokenizer(options.tokenizer);
  if (fromShards) return loadTokenizer(fromShards);
  const saved = options.outDir && join(options.outDir, 'tokenizer.json');
  if (saved && options.resume && existsSync(saved)) return loadTokenizer(saved);
  return trainCorpusTokenizer({
    ...options,
    vocabSize: options.vocabSize,
    model: options.tokenizerModel,
    onProgress: options.onTokenizerProgress,
  });
}

/** Reads a text run folder's `run.json`. */
export async function readTextRunInfo(dir: string): Promise<TextRunInfo> {
  const info = JSON.parse(await readFile(join(dir, 'run.json'), 'utf8')) as TextRunInfo;
  if (info.kind !== 'text')
    throw new OptionError(
      '--model',
      dir,
      'a folder written by pretrain --text or --dialogues (its run.json has kind "text")',
    );
  return info;
}
