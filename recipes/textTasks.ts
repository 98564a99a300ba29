import type { Observable } from 'rxjs';
import { OptionError } from '../core/errors.ts';
import type { Rng } from '../core/rng.ts';
import type { Valve } from '../core/valve.ts';
import type { Sample } from '../pipeline/sample.ts';
import { taskReading, tasksReading, type TaskName } from '../tasks/registry.ts';
import type { PretextTask } from '../tasks/task.ts';
import type { TextTaskConfig } from '../tasks/text/textTaskConfig.ts';
import type { Dialogue } from '../text/dialogue.ts';
import { readDialogueItems, readSentences, type TextSourceOptions } from '../text/sources.ts';
import { tokenizeSentences, type TokenizedSentence } from '../text/tokenizedSentence.ts';
import type { Tokenizer } from '../text/tokenizers/Tokenizer.ts';

/** Every task a text run can train: those that read sentences or dialogues, from the registry. */
export const TEXT_TASKS: readonly TaskName[] = tasksReading('sentences', 'dialogues');

/** A text task made for a run's tokenizer and settings: sentence tasks and dialogue tasks apart, as their sources are. */
export type TextTask =
  { reads: 'sentences'; task: PretextTask<TokenizedSentence> } | { reads: 'dialogues'; task: PretextTask<Dialogue> };

/**
 * The registry task `name` configured for a text run (its tokenizer's ids and sizes, the sequence length).
 *
 * @throws OptionError for a task that does not read text.
 */
export function buildTextTask(name: TaskName, tokenizer: Tokenizer, config: TextTaskConfig): TextTask {
  const setup = { itemShape: [config.maxLength], tokenizer, text: config };
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
  return readSentences(sources.text!, { ...sources, valve }).pipe(
    tokenizeSentences(tokenizer),
    made.task.sampler({ rng }),
  );
}

/** Checks that a task's kind of input (text or dialogues) was given. */
export function checkSources(name: TaskName, sources: TextSourceOptions): void {
  if (TASKS_READING_DIALOGUES.includes(name)) {
    if (!sources.dialogues?.length)
      throw new OptionError('--dialogues', undefined, `dialogue files for the task ${name}`);
  } else if (!sources.text?.length) throw new OptionError('--text', undefined, `a text corpus for the task ${name}`);
}
