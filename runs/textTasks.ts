import { OptionError } from '../core/errors.ts';
import { createDialogueOrderTask } from '../tasks/dialogue/utteranceOrder.ts';
import type { TaskName } from '../tasks/registry.ts';
import { tokenizeSentences, vocabularyOf } from '../text/tokenizedSentence.ts';
import type { Tokenizer } from '../text/tokenizers/Tokenizer.ts';
import { createTextCpcTask } from '../tasks/text/textCpc.ts';
import { createSkipgramTask } from '../tasks/text/skipgram.ts';
import { createNspTask } from '../tasks/text/nextSentence.ts';
import { createMlmTask } from '../tasks/text/maskedLm.ts';
import { createCbowTask } from '../tasks/text/cbow.ts';
import type { PretextTask } from '../tasks/task.ts';
import type { Observable } from 'rxjs';
import type { Rng } from '../core/rng.ts';
import type { Valve } from '../core/valve.ts';
import type { Sample } from '../pipeline/sample.ts';
import { type TextSourceOptions, readDialogueItems, readSentences } from '../text/sources.ts';

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
  const resolved = {
    maxLength: config.maxLength ?? 32,
    turns: config.turns ?? 3,
    embeddingSize: config.embeddingSize ?? 64,
  };
  if (!Number.isInteger(resolved.maxLength) || resolved.maxLength < 4)
    throw new OptionError('--max-length', resolved.maxLength, 'an integer >= 4 (tokens per sequence)');
  if (!Number.isInteger(resolved.turns) || resolved.turns < 2)
    throw new OptionError('--turns', resolved.turns, 'an integer >= 2');
  if (!Number.isInteger(resolved.embeddingSize) || resolved.embeddingSize < 1)
    throw new OptionError('--embedding-size', resolved.embeddingSize, 'a positive integer');
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

/**
 * The sample stream of one text task over its inputs: sentences (tokenized) for the sentence tasks, dialogues for
 * dialogue-order, through the task's seeded sampler.
 *
 * @throws OptionError when the task's kind of input was not given.
 */
export function textTaskSamples(
  task: PretextTask<never>,
  tokenizer: Tokenizer,
  sources: TextSourceOptions,
  rng: Rng,
  valve?: Valve,
): Observable<Sample> {
  checkSources(task.name as TaskName, sources);
  const sampler = (task as PretextTask<unknown>).sampler({ rng });
  if (DIALOGUE_TASKS.includes(task.name as TaskName))
    return readDialogueItems(sources.dialogues!, { ...sources, valve }).pipe(sampler);
  return readSentences(sources.text!, { ...sources, valve }).pipe(tokenizeSentences(tokenizer), sampler);
}

/** Checks that a task's kind of input (text or dialogues) was given. */
export function checkSources(name: TaskName, sources: TextSourceOptions): void {
  if (DIALOGUE_TASKS.includes(name)) {
    if (!sources.dialogues?.length)
      throw new OptionError('--dialogues', undefined, `dialogue files for the task ${name}`);
  } else if (!sources.text?.length) throw new OptionError('--text', undefined, `a text corpus for the task ${name}`);
}
