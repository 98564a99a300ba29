import { CorpusError, InputNotFoundError } from '../core/errors.ts';
import { hasExtension, resolveInputs } from '../core/resolveInputs.ts';

/** File extensions read when a folder or glob is given as a corpus input (a `.gz` of any of them is read too). */
export const TEXT_EXTENSIONS: readonly string[] = [
  '.txt',
  '.text',
  '.md',
  '.jsonl',
  '.ndjson',
  '.json',
  '.csv',
  '.tsv',
  '.tok',
  '.raw',
];

/** Whether a file name looks like a text file (or a gzipped one) by its extension. */
export function isTextLike(path: string, extensions: readonly string[] = TEXT_EXTENSIONS): boolean {
  return hasExtension(path, extensions, { gzipped: true });
}

/**
 * Expands corpus inputs to an ordered list of files with `resolveInputs`: a file stays as given (whatever its
 * extension), a folder becomes its text-like files (recursive, hidden ones skipped, sorted), a glob becomes its
 * text-like matches (sorted), and `-` (stdin) stays `-`. Order follows the inputs, so a corpus reads the same way
 * every run.
 *
 * @throws CorpusError when an input does not exist or a glob or folder matches no text-like file.
 * @example
 * await resolveCorpusInputs(['books/', 'extra/*.txt.gz', '-']);
 */
export async function resolveCorpusInputs(
  inputs: string | readonly string[],
  extensions: readonly string[] = TEXT_EXTENSIONS,
): Promise<string[]> {
  const list = typeof inputs === 'string' ? [inputs] : inputs;
  try {
    const resolved = await resolveInputs(list, { extensions, gzipped: true, stdin: true, noun: 'corpus' });
    return resolved.map((r) => r.input);
  } catch (error) {
    if (error instanceof InputNotFoundError) throw new CorpusError(error.message, error.input, 0, { cause: error });
    throw error;
  }
}
