import { tap, type MonoTypeOperatorFunction, type Observable } from 'rxjs';
import { observableValues } from '../core/asyncValues.ts';
import { OptionError, StoppedError } from '../core/errors.ts';
import type { Rng } from '../core/rng.ts';
import type { Valve } from '../core/valve.ts';
import type { Sample } from '../pipeline/sample.ts';
import { TASKS, taskReading, tasksReading, type TaskName } from '../tasks/registry.ts';
import type { PretextTask, SampleTally } from '../tasks/task.ts';
import type { TextTaskConfig } from '../tasks/text/textTaskConfig.ts';
import type { Dialogue } from '../text/dialogue.ts';
import { readDialogueItems, type TextSourceOptions } from '../text/sources.ts';
import type { TokenizedSentence } from '../text/tokenizedSentence.ts';
import { tokenizedSentences } from '../text/tokenizedSentences.ts';
import type { Tokenizer } from '../text/tokenizers/Tokenizer.ts';

/** Every task a text run can train: those that read sentences or dialogues, from the registry. */
export const TEXT_TASKS: readonly TaskName[] = tasksReading('sentences', 'dialogues');

/** A text task made for a run's tokenizer and settings: sentence tasks and dialogue tasks apart, as their sources are. */
export type TextTask =
  { reads: 'sentences'; task: PretextTask<TokenizedSentence> } | { reads: 'dialogues'; task: PretextTask<Dialogue> };

/**
 * The registry task `name` configured for a text run (its tokenizer's ids and sizes, the sequence length, and the
 * corpus's token counts for tasks that need them, see {@link countCorpusTokens}).
 *
 * @throws OptionError for a task that does not read text.
 */
export function buildTextTask(
  name: TaskName,
  tokenizer: Tokenizer,
  config: TextTaskConfig,
  tokenCounts?: ArrayLike<number>,
): TextTask {
  const setup = { itemShape: [config.maxLength], tokenizer, text: config, tokenCounts };
  if (!TEXT_TASKS.includes(name)) throw new OptionError('--tasks', name, `text tasks: ${TEXT_TASKS.join(', ')}`);
  if (TASKS_READING_DIALOGUES.includes(name))
    return { reads: 'dialogues', task: taskReading(name, 'dialogues').configure(setup) };
  return { reads: 'sentences', task: taskReading(name, 'sentences').configure(setup) };
}

const TASKS_READING_DIALOGUES = tasksReading('dialogues');

/**
 * The sample stream of one text task over its inputs: sentences (tokenized) for the sentence tasks, dialogues for
 * the dialogue tasks, through the task's seeded sampler.
 *
 * @throws OptionError when the task's kind of input was not given.
 */
export function textTaskSamples(
  made: TextTask,
  tokenizer: Tokenizer,
  sources: TextSourceOptions,
  rng: Rng,
  valve?: Valve,
): Observable<Sample> {
  checkSources(made.task.name as TaskName, sources);
  if (made.reads === 'dialogues') {
    return readDialogueItems(sources.dialogues!, { ...sources, valve }).pipe(made.task.sampler({ rng }));
  }
  return tokenizedSentences(sources.text!, tokenizer, { ...sources, valve }).pipe(made.task.sampler({ rng }));
}

/** Checks that a task's kind of input (text or dialogues) was given. */
export function checkSources(name: TaskName, sources: TextSourceOptions): void {
  if (TASKS_READING_DIALOGUES.includes(name)) {
    if (!sources.dialogues?.length)
      throw new OptionError('--dialogues', undefined, `dialogue files for the task ${name}`);
  } else if (!sources.text?.length) throw new OptionError('--text', undefined, `a text corpus for the task ${name}`);
}

/** Whether any of `names` draws words by corpus frequency, so that a run must count the corpus first. */
export function needTokenCounts(names: readonly TaskName[]): boolean {
  return names.some((name) => {
    const task: PretextTask<never> = TASKS[name];
    return task.needsTokenCounts === true;
  });
}

/** Options of {@link countCorpusTokens}. */
export interface CountTokensOptions extends TextSourceOptions {
  /** Stops the count: it then fails with {@link StoppedError}. */
  signal?: AbortSignal;
}

/**
 * The count of each token id over the whole text corpus (every worker's part, whatever `shard` says, so that all
 * workers draw from one distribution): one pass that reads, segments and tokenizes it as the samplers will. The
 * word2vec tasks read it for their unigram^0.75 negatives and subsampling, as the paper's C code does after its
 * counting pass.
 *
 * @throws StoppedError when `signal` aborts; (via the corpus) the errors of `readSentences`.
 */
export async function countCorpusTokens(tokenizer: Tokenizer, options: CountTokensOptions): Promise<Float64Array> {
  const counts = new Float64Array(tokenizer.vocabSize);
  const sentences = tokenizedSentences(options.text ?? [], tokenizer, { ...options, shard: undefined });
  for await (const sentence of observableValues(sentences)) {
    if (options.signal?.aborted) throw new StoppedError('while counting the corpus tokens (nothing was trained)');
    for (const id of sentence.ids) counts[id]!++;
  }
  return counts;
}

/** What a text run reports of one task's emitted samples: how many, and its tally (label balance, baseline). */
export type TextSampleSummary = { emitted: number } & Record<string, number | string>;

/**
 * Counts the samples each task's streams emit, over all epochs: how many, and the task's
 * {@link PretextTask.tally} when it has one (NSP's positives and negatives, MLM's and text-CPC's
 * most-frequent-token baseline, with the token named by the run's tokenizer).
 */
export class TextSampleTallies {
  readonly #tokenizer: Tokenizer;
  readonly #tasks = new Map<string, { emitted: number; tally?: SampleTally }>();

  constructor(tokenizer: Tokenizer) {
    this.#tokenizer = tokenizer;
  }

  /** An operator that counts the samples passing through it for `task`. */
  count(task: Pick<PretextTask, 'name' | 'tally'>): MonoTypeOperatorFunction<Sample> {
    let entry = this.#tasks.get(task.name);
    if (!entry) this.#tasks.set(task.name, (entry = { emitted: 0, tally: task.tally?.() }));
    const counted = entry;
    return tap((sample) => {
      counted.emitted++;
      counted.tally?.add(sample);
    });
  }

  /** Counts `n` samples of `task` emitted without passing through {@link count} (a task with no tally). */
  addEmitted(task: Pick<PretextTask, 'name' | 'tally'>, n: number): void {
    let entry = this.#tasks.get(task.name);
    if (!entry) this.#tasks.set(task.name, (entry = { emitted: 0, tally: task.tally?.() }));
    if (entry.tally) throw new Error(`${task.name} keeps a tally: its samples must pass through count()`);
    entry.emitted += n;
  }

  /** The figures of every task so far. */
  summary(): Record<string, TextSampleSummary> {
    const out: Record<string, TextSampleSummary> = {};
    for (const [name, { emitted, tally }] of this.#tasks) {
      const figures: TextSampleSummary = { emitted, ...tally?.summary() };
      if (typeof figures.mostFrequentId === 'number' && figures.mostFrequentId >= 0)
        figures.mostFrequentToken = this.#tokenizer.idToToken(figures.mostFrequentId) ?? String(figures.mostFrequentId);
      out[name] = figures;
    }
    return out;
  }
}
