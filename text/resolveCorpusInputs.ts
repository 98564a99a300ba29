import { stat, readdir } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';
import { CorpusError } from '../core/errors.ts';

/** File extensions read when a folder is given as a corpus input (a `.gz` of any of them is read too). */
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
  const name = path.toLowerCase().replace(/\.gz$/, '');
  return extensions.some((ext) => name.endsWith(ext));
}

/**
 * Expands corpus inputs to an ordered list of files: a file stays as given, a folder becomes its text-like files
 * (recursive, sorted), a glob becomes its matches (sorted), and `-` (stdin) stays `-`. Order follows the inputs,
 * so a corpus reads the same way every run.
 *
 * @throws CorpusError when an input does not exist or a glob or folder matches no file.
 */
export async function resolveCorpusInputs(
  inputs: string | readonly string[],
  extensions: readonly string[] = TEXT_EXTENSIONS,
): Promise<string[]> {
  const list = typeof inputs === 'string' ? [inputs] : [...inputs];
  const files: string[] = [];
  for (const input of list) {
    if (input === '-') files.push('-');
    else if (isDynamicPattern(input)) files.push(...(await expandGlob(input)));
    else files.push(...(await expandPath(input, extensions)));
  }
  return files;
}

async function expandGlob(pattern: string): Promise<string[]> {
  const matches = await glob(pattern, { onlyFiles: true, absolute: isAbsolute(pattern), expandDirectories: false });
  if (matches.length === 0)
    throw new CorpusError(
      `corpus glob ${pattern} matches no file (check the pattern; quote it so the shell does not expand it)`,
      pattern,
    );
  return matches.sort();
}

async function expandPath(path: string, extensions: readonly string[]): Promise<string[]> {
  const info = await stat(path).catch((cause: unknown) => {
    throw new CorpusError(
      `corpus input not found: ${path} (check the path, or give a glob such as 'books/*.txt')`,
      path,
      0,
      { cause },
    );
  });
  if (!info.isDirectory()) return [path];
  const files = await walk(path, extensions);
  if (files.length === 0) {
    throw new CorpusError(
      `corpus folder ${path} holds no text file (looked for ${extensions.join(' ')} and their .gz)`,
      path,
    );
  }
  return files;
}

async function walk(dir: string, extensions: readonly string[]): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    // Hidden files and folders (.git, .DS_Store) are never corpus text.
    if (entry.name.startsWith('.')) continue;
    if (entry.isDirectory()) files.push(...(await walk(path, extensions)));
    else if (entry.isFile() && isTextLike(path, extensions)) files.push(path);
  }
  return files;
}
