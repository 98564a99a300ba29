import { realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';
import { InputNotFoundError, OptionError } from './errors.ts';

/** One thing to read, as `resolveInputs` found it. */
export interface ResolvedInput {
  /** A file path (relative paths stay relative, as the user wrote them), a URL, or `-` for stdin. */
  readonly input: string;
  /** `file` for a local file, `url` for a network stream, `stdin` for `-`. */
  readonly kind: 'file' | 'url' | 'stdin';
}

/** Options of `resolveInputs`. */
export interface ResolveInputsOptions {
  /**
   * File extensions that folders and globs keep, any case, with or without the dot (`mp4`, `.png`, `tar.gz`).
   * A file named explicitly is kept whatever its extension.
   */
  readonly extensions: readonly string[];
  /** Also keep a gzipped file of any of `extensions` (`book.txt.gz`). Default false. */
  readonly gzipped?: boolean;
  /** Pass `-` through as stdin. Default false (then `-` is a file name like any other). */
  readonly stdin?: boolean;
  /** Pass URLs with a scheme (http, https, rtsp, rtmp, udp, tcp) through as live streams. Default false. */
  readonly urls?: boolean;
  /** What the inputs are, for error messages (`video not found: ...`): `video`, `corpus`, `image`. Default `input`. */
  readonly noun?: string;
}

const URL_SCHEME = /^(https?|rtsp|rtmp|udp|tcp):\/\//i;

/**
 * Turns the inputs a user gave into the files to read, on `tinyglobby`. Each input is, in this order:
 * - `-` (when `stdin`) or a URL (when `urls`): passed through;
 * - an existing file: kept whatever its extension;
 * - an existing folder: every file below it with one of `extensions`, following symbolic links;
 * - otherwise a glob (`*`, `?`, `**`, `[ab]`, `{a,b}`): its matches with one of `extensions`.
 *
 * Because an existing path is never read as a glob, a folder named `clips [2020]` is a folder, not a character class.
 * Folders and globs skip hidden files and folders (`.git`, macOS `._clip.mp4`) unless the glob names the dot
 * itself (`.cache/*.mp4`), and yield each real file once even when links reach it twice (the shallowest path wins,
 * so a link loop adds nothing). The files of one input come in code-unit order, the same on every machine; the
 * inputs keep the order they were given in, and a file given twice comes twice (callers that want one list sort
 * and de-duplicate).
 *
 * @throws InputNotFoundError (one line: the input, what was looked for, the fix) when a path does not exist or a
 *   folder or glob holds no file with one of `extensions`.
 * @example
 * const images = await resolveInputs(['photos/', 'extra/*.png'], { extensions: ['png', 'jpg', 'jpeg'], noun: 'image' });
 */
export async function resolveInputs(
  inputs: readonly string[],
  options: ResolveInputsOptions,
): Promise<ResolvedInput[]> {
  if (options.extensions.length === 0) {
    throw new OptionError('extensions', options.extensions, "a non-empty list such as ['mp4', 'mkv']");
  }
  const resolved: ResolvedInput[] = [];
  for (const input of inputs) resolved.push(...(await resolveOne(input, options)));
  return resolved;
}

/**
 * Whether `path` ends in one of `extensions` (any case, with or without the dot), or a `.gz` of one when `gzipped`.
 *
 * @example
 * hasExtension('clips/A.MKV', ['mkv']); // true
 * hasExtension('book.txt.gz', ['.txt'], { gzipped: true }); // true
 */
export function hasExtension(
  path: string,
  extensions: readonly string[],
  options: { readonly gzipped?: boolean } = {},
): boolean {
  let name = path.toLowerCase();
  if (options.gzipped) name = name.replace(/\.gz$/, '');
  return extensions.some((ext) => name.endsWith(`.${normalizeExtension(ext)}`));
}

async function resolveOne(input: string, options: ResolveInputsOptions): Promise<ResolvedInput[]> {
  if (input === '-' && options.stdin) return [{ input, kind: 'stdin' }];
  if (options.urls && URL_SCHEME.test(input)) return [{ input, kind: 'url' }];
  let info;
  try {
    info = await stat(input);
  } catch (cause) {
    if (isDynamicPattern(input)) return asFiles(await expandGlob(input, options));
    throw new InputNotFoundError(`${noun(options)} not found: ${input} (${missingFix(options)})`, input, {
      cause,
    });
  }
  if (!info.isDirectory()) return asFiles([input]);
  const files = await findFiles(input, '**/*', options);
  if (files.length === 0) {
    throw new InputNotFoundError(
      `${noun(options)} folder ${input} holds no ${describe(options)} file (looked in every subfolder, skipping hidden ones; add such files, or name a file to read it whatever its extension)`,
      input,
    );
  }
  return asFiles(files);
}

async function expandGlob(pattern: string, options: ResolveInputsOptions): Promise<string[]> {
  // Crawl only below the literal folders the pattern starts with; they are also the prefix every match keeps.
  const segments = pattern.split('/');
  const firstDynamic = segments.findIndex((segment) => isDynamicPattern(segment));
  const base = segments.slice(0, firstDynamic).join('/') || (pattern.startsWith('/') ? '/' : '.');
  const rest = segments.slice(firstDynamic).join('/');
  const info = await stat(base).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new InputNotFoundError(
      `${noun(options)} glob ${pattern} matches no file: the folder ${base} does not exist (check the path)`,
      pattern,
    );
  }
  const files = await findFiles(base, rest, options);
  if (files.length === 0) {
    throw new InputNotFoundError(
      `${noun(options)} glob ${pattern} matches no ${describe(options)} file (check the pattern, and quote it so the shell does not expand it)`,
      pattern,
    );
  }
  return files;
}

/** The files below `dir` that `pattern` matches and that have a wanted extension, each real file once, sorted. */
async function findFiles(dir: string, pattern: string, options: ResolveInputsOptions): Promise<string[]> {
  const matches = await glob(pattern, {
    cwd: dir,
    dot: false,
    onlyFiles: true,
    followSymbolicLinks: true,
    expandDirectories: false,
  });
  // picomatch lets a few patterns (`[!a]*`) match hidden names even with `dot: false`; keep them out unless the
  // pattern names a dot itself.
  const hiddenWanted = /(^|\/)\./.test(pattern);
  const wanted = matches
    .filter((path) => hiddenWanted || !/(^|\/)\./.test(path))
    .filter((path) => hasExtension(path, options.extensions, options))
    .map((path) => join(dir, path));
  return sortByCodeUnits(await oncePerRealFile(wanted));
}

/** Drops paths that reach a file already reached by a shallower path (or an equally deep one that sorts first). */
async function oncePerRealFile(paths: readonly string[]): Promise<string[]> {
  const byDepth = sortByCodeUnits(paths).sort((a, b) => depth(a) - depth(b));
  const reals = await Promise.all(byDepth.map((path) => realpath(path)));
  const seen = new Set<string>();
  const kept: string[] = [];
  byDepth.forEach((path, i) => {
    if (seen.has(reals[i]!)) return;
    seen.add(reals[i]!);
    kept.push(path);
  });
  return kept;
}

function depth(path: string): number {
  return path.split('/').length;
}

function sortByCodeUnits(paths: readonly string[]): string[] {
  return [...paths].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function asFiles(paths: readonly string[]): ResolvedInput[] {
  return paths.map((input) => ({ input, kind: 'file' }));
}

function normalizeExtension(ext: string): string {
  return ext.toLowerCase().replace(/^\./, '');
}

function noun(options: ResolveInputsOptions): string {
  return options.noun ?? 'input';
}

function describe(options: ResolveInputsOptions): string {
  const list = options.extensions.map(normalizeExtension).join('/');
  return options.gzipped ? `${list} (or .gz)` : list;
}

function missingFix(options: ResolveInputsOptions): string {
  const glob = `'data/**/*.${normalizeExtension(options.extensions[0]!)}'`;
  const url = options.urls ? '; a URL needs a scheme such as http:// or rtsp://' : '';
  return `check the path, or give a folder or a quoted glob such as ${glob}${url}`;
}
