import { OptionError } from '../../core/errors.ts';
import { vocabularyOf, type TextVocabulary } from '../../text/tokenizedSentence.ts';
import type { Tokenizer } from '../../text/tokenizers/Tokenizer.ts';

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

/** What a text task takes from a run's setup: its tokenizer, the ids and sizes of its vocabulary, the text config. */
export interface TextSetup {
  tokenizer: Tokenizer;
  vocabulary: TextVocabulary;
  config: TextTaskConfig;
}

/**
 * The text part of a run's setup, for `configure` of a text task.
 *
 * @throws OptionError naming the task when the run gave it no tokenizer (it is not a text run).
 */
export function textSetupOf(
  setup: { readonly tokenizer?: Tokenizer; readonly text?: TextTaskConfig },
  task: string,
): TextSetup {
  if (!setup.tokenizer)
    throw new OptionError(
      '--tasks',
      task,
      'used in a text run (--text, --dialogues or --shards): it reads tokenized text',
    );
  return {
    tokenizer: setup.tokenizer,
    vocabulary: vocabularyOf(setup.tokenizer),
    config: setup.text ?? resolveTextTaskConfig(),
  };
}
