import type * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { concatMap, filter, map, type Observable, type OperatorFunction } from 'rxjs';
import { createDialogueOrderTask, scoreDialogue, type DialogueScore, type DialogueScorer } from '../tasks/dialogue/utteranceOrder.ts';
import type { TaskChoice, TaskName } from '../tasks/registry.ts';
import type { PretextTask, Sample } from '../tasks/task.ts';
import { createCbowTask } from '../tasks/text/cbow.ts';
import { createMlmTask } from '../tasks/text/maskedLm.ts';
import { createNspTask } from '../tasks/text/nextSentence.ts';
import { createSkipgramTask } from '../tasks/text/skipgram.ts';
import { createTextCpcTask } from '../tasks/text/textCpc.ts';
import { tokenizeSentences, vocabularyOf, type SentenceText } from '../tasks/text/tokenizedSentence.ts';
import { readDialogues, type Dialogue, type DialogueFormat } from '../text/dialogue.ts';
import { readLines, type SkippedInput } from '../text/readCorpus.ts';
import { segmentSentences, splitParagraphs } from '../text/segment.ts';
import { buildTextEncoder, type TextEncoderOptions } from '../text/textEncoder.ts';
import { loadTokenizer } from '../text/tokenizers/loadTokenizer.ts';
import type { Tokenizer } from '../text/tokenizers/Tokenizer.ts';
import { WordPiece } from '../text/tokenizers/WordPiece.ts';
import { WordVocab } from '../text/tokenizers/WordVocab.ts';
import { writeJson } from './checkpoint.ts';
import { ModelIOError, OptionError } from './errors.ts';
import { loadModel, saveModel } from './modelIO.ts';
import type { Rng } from './rng.ts';
import { shuffleBuffer } from './shuffleBuffer.ts';
import { train, type TrainOptions, type TrainResult } from './trainer.ts';
import type { Valve } from './valve.ts';

/** The tasks that read sentences of a text corpus. */
export const SENTENCE_TASKS: readonly TaskName[] = ['skipgram', 'cbow', 'mlm', 'nsp', 'text-cpc'];
/** The tasks that read dialogues. */
export const DIALOGUE_TASKS: readonly TaskName[] = ['dialogue-order'];
/** Every task a text run can train. */
export const TEXT_TASKS: readonly TaskName[] = [...SENTENCE_TASKS, ...DIALOGUE_TASKS];

/** How the text tasks of a run are built: what `run.json` and a shard manifest record. */
export interface TextTaskConfig {
  /** Tokens per sequence (sentence or utterance), special tokens included. Default 32. */
  maxLength: number;
  /** Consecutive utterances per dialogue-order window. Default 3. */
  turns: number;
  /** Size of the token embeddings (word2vec and CPC tasks read them). Default 64. */
  embeddingSize: number;
}

/** Fills in the defaults of a {@link TextTaskConfig} and checks it. */
export function resolveTextTaskConfig(config: Partial<TextTaskConfig> = {}): TextTaskConfig {
  const resolved = { maxLength: config.maxLength ?? 32, turns: config.turns ?? 3, embeddingSize: config.embeddingSize ?? 64 };
  if (!Number.isInteger(resolved.maxLength) || resolved.maxLength < 4) throw new OptionError('--max-length', resolved.maxLength, 'an integer >= 4 (tokens per sequence)');
  if (!Number.isInteger(resolved.turns) || resolved.turns < 2) throw new OptionError('--turns', resolved.turns, 'an integer >= 2');
  if (!Number.isInteger(resolved.embeddingSize) || resolved.embeddingSize < 1) throw new OptionError('--embedding-size', resolved.embeddingSize, 'a positive integer');
  return resolved;
}

/**
 * The registry task `name` made for a real tokenizer (the registry holds them with default vocabularies): its
 * ids, vocabulary size and sequence length.
 *
 * @throws OptionError for a task that does not read text.
 */
export function buildTextTask(name: TaskName, tokenizer: Tokenizer, config: TextTaskConfig): PretextTask<never> {
  const vocabulary = vocabularyOf(tokenizer);
  const { maxLength, embeddingSize, turns } = config;
  const word2vec = { vocabSize: vocabulary.vocabSize, embeddingSize };
  const made: PretextTask<never> | undefined = (
    {
      skipgram: () => createSkipgramTask(word2vec),
      cbow: () => createCbowTask(word2vec),
      mlm: () => createMlmTask({ vocabulary, maxLength }),
      nsp: () => createNspTask({ vocabulary, maxLength }),
      'text-cpc': () => createTextCpcTask({ vocabulary, maxLength, embeddingSize }),
      'dialogue-order': () => createDialogueOrderTask({ tokenizer, maxLength, turns }),
    } as Partial<Record<TaskName, () => PretextTask<never>>>
  )[name]?.();
  if (!made) throw new OptionError('--tasks', name, `text tasks: ${TEXT_TASKS.join(', ')}`);
  return made;
}

/** Where the raw items of text tasks come from. */
export interface TextSourceOptions {
  /** Text corpus inputs (files, folders, globs, `.gz`, `-`), read by the sentence tasks. */
  text?: readonly string[];
  /** Dialogue inputs, read by dialogue-order. */
  dialogues?: readonly string[];
  /** Format of the dialogue inputs. Default `auto`. */
  dialogueFormat?: DialogueFormat;
  /** Binary files, invalid UTF-8 lines and bad dialogue records: stop with a named error (default) or count and skip them. */
  onInvalid?: 'skip' | 'fail';
  /** Called for each skipped input (line, file or record). */
  onSkip?: (skip: TextSkip) => void;
  /** Keep only item k where k % count === index (paragraphs or dialogues), for parallel workers. */
  shard?: { index: number; count: number };
}

/** A line, file or dialogue record left out under `onInvalid: 'skip'`. */
export interface TextSkip {
  readonly source: string;
  readonly line: number;
  readonly reason: SkippedInput['reason'] | 'bad-record';
}

/** Sentences of a corpus; each paragraph (lines between blank lines) is one document. */
export function readSentences(inputs: readonly string[], options: TextSourceOptions & { valve?: Valve } = {}): Observable<SentenceText> {
  let document = 0;
  const shard = options.shard;
  return readLines(inputs, { valve: options.valve, onInvalid: options.onInvalid, onSkip: options.onSkip }).pipe(
    splitParagraphs(),
    map((p, k) => ({ p, k })),
    filter(({ k }) => !shard || k % shard.count === shard.index),
    concatMap(({ p }) => {
      const doc = document++;
      return segmentSentences(p.text).map((text): SentenceText => ({ text, document: doc, source: `${p.source}:${p.line}` }));
    }),
  );
}

/** Dialogues of the dialogue inputs, sharded as `options.shard` says. */
export function readDialogueItems(inputs: readonly string[], options: TextSourceOptions & { valve?: Valve } = {}): Observable<Dialogue> {
  const shard = options.shard;
  const onSkip = options.onSkip;
  return readDialogues(inputs, {
    format: options.dialogueFormat,
    onInvalid: options.onInvalid,
    onSkip: onSkip && ((err) => onSkip({ source: err.source, line: err.line, reason: 'bad-record' })),
    read: { valve: options.valve, onSkip },
  }).pipe(filter((_, k) => !shard || k % shard.count === shard.index));
}

/**
 * The sample stream of one text task over its inputs: sentences (tokenized) for the sentence tasks, dialogues for
 * dialogue-order, through the task's seeded sampler.
 *
 * @throws OptionError when the task's kind of input was not given.
 */
export function textTaskSamples(task: PretextTask<never>, tokenizer: Tokenizer, sources: TextSourceOptions, rng: Rng, valve?: Valve): Observable<Sample> {
  checkSources(task.name as TaskName, sources);
  const sampler = (task as PretextTask<unknown>).sampler({ rng });
  if (DIALOGUE_TASKS.includes(task.name as TaskName)) return readDialogueItems(sources.dialogues!, { ...sources, valve }).pipe(sampler);
  return readSentences(sources.text!, { ...sources, valve }).pipe(tokenizeSentences(tokenizer), sampler);
}

/** Checks that a task's kind of input (text or dialogues) was given. */
export function checkSources(name: TaskName, sources: TextSourceOptions): void {
  if (DIALOGUE_TASKS.includes(name)) {
    if (!sources.dialogues?.length) throw new OptionError('--dialogues', undefined, `dialogue files for the task ${name}`);
  } else if (!sources.text?.length) throw new OptionError('--text', undefined, `a text corpus for the task ${name}`);
}

/** Options of {@link trainCorpusTokenizer}. */
export interface CorpusTokenizerOptions extends TextSourceOptions {
  /** Vocabulary size. Default 8000. */
  vocabSize?: number;
  /**
   * `wordpiece` (subwords, no unknown words) or `word` (whole lowercased words seen at least 3 times, the rest
   * [UNK]). Default: `word` when only dialogues are given, else `wordpiece`. On DailyDialog, dialogue-order learned
   * better with words (800 steps, same seed: original vs shuffled AUC 0.80 with words, 0.71 with WordPiece).
   */
  model?: 'wordpiece' | 'word';
}

/** Trains a tokenizer (see {@link CorpusTokenizerOptions.model}) on the lines of the text inputs and the turns of the dialogue inputs. */
export async function trainCorpusTokenizer(options: CorpusTokenizerOptions): Promise<Tokenizer> {
  const { text = [], dialogues = [] } = options;
  async function* texts(): AsyncGenerator<string> {
    if (text.length > 0) for await (const line of observableValues(readLines(text, { onInvalid: options.onInvalid }))) yield line.text;
    if (dialogues.length > 0) {
      for await (const d of observableValues(readDialogueItems(dialogues, { ...options, shard: undefined }))) yield* d.turns;
    }
  }
  const model = options.model ?? (text.length === 0 && dialogues.length > 0 ? 'word' : 'wordpiece');
  if (model !== 'word' && model !== 'wordpiece') throw new OptionError('--tokenizer-model', model, "'word' or 'wordpiece'");
  const vocabSize = options.vocabSize ?? 8000;
  return model === 'word' ? WordVocab.train(texts(), { maxSize: vocabSize, minCount: 3 }) : WordPiece.train(texts(), { vocabSize });
}

/** An observable as an async iterable, buffering what arrives while the consumer is busy. */
async function* observableValues<T>(source: Observable<T>): AsyncGenerator<T> {
  const buffer: T[] = [];
  let done = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const subscription = source.subscribe({
    next: (v) => (buffer.push(v), wake?.()),
    error: (e: unknown) => ((failure = e), (done = true), wake?.()),
    complete: () => ((done = true), wake?.()),
  });
  try {
    for (;;) {
      if (buffer.length > 0) yield buffer.shift()!;
      else if (failure !== undefined) throw failure;
      else if (done) return;
      else await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    subscription.unsubscribe();
  }
}

/** Options of {@link pretrainText}. */
export interface TextPretrainOptions
  extends Pick<TrainOptions, 'steps' | 'batchSize' | 'learningRate' | 'seed' | 'outDir' | 'checkpointEvery' | 'resume' | 'progress' | 'signal' | 'onStep'>,
    TextSourceOptions {
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
}

/**
 * Pretrains the shared text encoder (buildTextEncoder) with text and dialogue tasks on one trainer: picks or
 * trains a tokenizer (saved as `outDir/tokenizer.json`), builds each task for it, streams samples from the corpus,
 * the dialogues or process-corpus shards, and trains. Writes `run.json`, `encoder/` and each head in
 * `heads/<task>/` (score-dialogue reads `heads/dialogue-order/`).
 *
 * @example
 * await pretrainText({ text: ['books/'], tasks: parseTaskList('nsp,mlm'), steps: 200, batchSize: 32, outDir: 'runs/t' });
 */
export async function pretrainText(options: TextPretrainOptions): Promise<TrainResult & { encoder: tf.LayersModel; tokenizer: Tokenizer }> {
  const notText = options.tasks.filter((t) => !TEXT_TASKS.includes(t.name)).map((t) => t.name);
  if (notText.length > 0) throw new OptionError('--tasks', notText.join(','), `text tasks: ${TEXT_TASKS.join(', ')}`);
  if (options.tokenizerModel && (options.tokenizer || options.shards)) {
    throw new OptionError('--tokenizer-model', options.tokenizerModel, `left out: the tokenizer comes from ${options.tokenizer ? '--tokenizer' : '--shards'}, and only a tokenizer trained here has a kind to choose`);
  }
  const bufferSize = options.shuffleBuffer ?? 4096;
  if (!Number.isInteger(bufferSize) || bufferSize < 1) throw new OptionError('--shuffle-buffer', bufferSize, 'a positive integer (1 keeps the corpus order)');
  const { readShardManifest, shardSamples } = await import('./shards.ts');
  const manifest = options.shards ? await readShardManifest(options.shards) : undefined;
  const missing = manifest ? options.tasks.filter((t) => !manifest.counts[t.name]).map((t) => t.name) : [];
  if (missing.length > 0) throw new OptionError('--tasks', missing.join(','), `tasks with samples in ${options.shards} (it has ${Object.keys(manifest!.counts).join(', ')})`);
  const taskConfig = manifest ? manifest.taskConfig : resolveTextTaskConfig(options.taskConfig);
  const tokenizer = await resolveTokenizer(options, manifest && join(options.shards!, manifest.tokenizer.file));
  const info: TextRunInfo = {
    kind: 'text',
    tokenizer: 'tokenizer.json',
    encoder: { vocabSize: tokenizer.vocabSize, maxLength: taskConfig.maxLength, embeddingSize: taskConfig.embeddingSize, hiddenSize: options.hiddenSize ?? 64, seed: options.seed ?? 0 },
    taskConfig,
    tasks: options.tasks,
    text: [...(options.text ?? [])],
    dialogues: [...(options.dialogues ?? [])],
    shards: options.shards,
    heads: options.tasks.map((t) => t.name),
  };
  const encoder = buildTextEncoder(info.encoder);
  const tasks = options.tasks.map(({ name, weight }) => {
    const task = buildTextTask(name, tokenizer, taskConfig);
    // The buffer's rng is forked before the sampler draws, so an epoch's order is a function of its seed (exact resume).
    const samples = (_epoch: number, valve: Valve, rng: Rng): Observable<Sample> => {
      const shuffle = shuffleBuffer<Sample>({ rng: rng.fork(), bufferSize });
      return (options.shards ? shardSamples(options.shards, name, { valve }) : textTaskSamples(task, tokenizer, options, rng, valve)).pipe(shuffle);
    };
    if (!options.shards) checkSources(name, options);
    return { task, weight, samples };
  });
  if (options.outDir) {
    await mkdir(options.outDir, { recursive: true });
    await tokenizer.save(join(options.outDir, info.tokenizer));
    await writeJson(join(options.outDir, 'run.json'), info);
  }
  const result = await train({ ...options, encoder, itemShape: [taskConfig.maxLength], tasks });
  if (options.outDir) {
    for (const [name, head] of Object.entries(result.heads)) await saveModel(head, join(options.outDir, 'heads', name));
  }
  return { ...result, encoder, tokenizer };
}

/** The tokenizer of a run: given, the shards', the run folder's (on resume), or trained on the corpus. */
async function resolveTokenizer(options: TextPretrainOptions, fromShards: string | undefined): Promise<Tokenizer> {
  if (typeof options.tokenizer === 'object') return options.tokenizer;
  if (typeof options.tokenizer === 'string') return loadTokenizer(options.tokenizer);
  if (fromShards) return loadTokenizer(fromShards);
  const saved = options.outDir && join(options.outDir, 'tokenizer.json');
  if (saved && options.resume && existsSync(saved)) return loadTokenizer(saved);
  return trainCorpusTokenizer({ ...options, vocabSize: options.vocabSize, model: options.tokenizerModel });
}

/** Reads a text run folder's `run.json`. */
export async function readTextRunInfo(dir: string): Promise<TextRunInfo> {
  const info = JSON.parse(await readFile(join(dir, 'run.json'), 'utf8')) as TextRunInfo;
  if (info.kind !== 'text') throw new OptionError('--model', dir, 'a folder written by pretrain --text or --dialogues (its run.json has kind "text")');
  return info;
}

/**
 * The dialogue scorer of a text run folder: its encoder, `heads/dialogue-order/`, tokenizer and the window it was
 * trained with. The caller disposes `encoder` and `head`.
 *
 * @throws ModelIOError when the run did not train dialogue-order or a file is missing.
 */
export async function loadDialogueScorer(dir: string): Promise<Required<DialogueScorer>> {
  if (!existsSync(join(dir, 'run.json'))) throw new ModelIOError(dir, 'no run.json (give the --out folder of pretrain --dialogues)');
  const info = await readTextRunInfo(dir);
  const headDir = join(dir, 'heads', 'dialogue-order');
  if (!existsSync(join(headDir, 'model.json'))) {
    throw new ModelIOError(dir, `no heads/dialogue-order/: the run trained ${info.tasks.map((t) => t.name).join(', ')} (pretrain with --dialogues FILE --tasks dialogue-order)`);
  }
  const head = await loadModel(headDir);
  // A head from before the pairwise comparison (a GRU over [turns, hidden]) would fail deep inside tfjs.
  const expected = [info.taskConfig.turns - 1, 8 * (info.encoder.hiddenSize ?? 64)];
  const shape = head.inputs[0]!.shape.slice(1);
  if (shape.join() !== expected.join()) {
    head.dispose();
    throw new ModelIOError(headDir, `head takes [${shape.join(', ')}], this version scores with [${expected.join(', ')}] (adjacent utterance pairs): retrain it with pretrain --dialogues`);
  }
  const tokenizer = await loadTokenizer(join(dir, info.tokenizer));
  const encoder = await loadModel(join(dir, 'encoder'));
  return { encoder, head, tokenizer, maxLength: info.taskConfig.maxLength, turns: info.taskConfig.turns };
}

/** A dialogue's coherence score with where it came from. */
export interface ScoredDialogue extends DialogueScore {
  id: string;
  source: string;
}

/**
 * Scores each dialogue's coherence with a trained dialogue-order model (see `scoreDialogue`): an RxJS operator,
 * so a file of any length streams through. Dialogues without turns are dropped.
 *
 * @example
 * readDialogues('dialogues_validation.txt').pipe(scoreDialogues(await loadDialogueScorer('runs/d')));
 */
export function scoreDialogues(model: DialogueScorer): OperatorFunction<Dialogue, ScoredDialogue> {
  return (dialogues) =>
    dialogues.pipe(
      filter((d) => d.turns.length > 0),
      map((d) => ({ id: d.id, source: d.source, ...scoreDialogue(model, d) })),
    );
}
