import { readdir, realpath, stat } from 'node:fs/promises';
import { join, posix, sep } from 'node:path';
import { OptionError, VideoNotFoundError } from '../core/errors.ts';

/** File extensions (lower case, no dot) that folder and glob expansion treat as video. */
export const VIDEO_EXTENSIONS: readonly string[] = [
  'mp4',
  'mkv',
  'avi',
  'mov',
  'webm',
  'm4v',
  'ts',
  'mpg',
  'mpeg',
  'flv',
];

/** One input to decode, as `expandInputs` resolved it. */
export interface InputSpec {
  /** What to hand to the decoder: a file path, a URL, or `-` for stdin. */
  readonly input: string;
  /** `file` for a local file, `url` for a network stream, `stdin` for `-`. */
  readonly kind: 'file' | 'url' | 'stdin';
  /** True when the input has no known duration (URLs, stdin): it cannot be seeked or replayed for a second epoch. */
  readonly live: boolean;
}

/** Which part of the inputs one of several parallel workers takes. */
export interface Shard {
  /** 0-based index of this worker, below `count`. */
  readonly index: number;
  /** Number of workers. */
  readonly count: number;
}

/** Options of `expandInputs`. */
export interface ExpandInputsOptions {
  /** Keep only the inputs of this shard: the `index`-th of every `count` in sorted order. Default: all. */
  shard?: Shard;
  /** Extensions (no dot, any case) that folders and globs keep. Default `VIDEO_EXTENSIONS`. Explicit file paths are kept whatever their extension. */
  extensions?: readonly string[];
}

const URL_SCHEME = /^(https?|rtsp|rtmp|udp|tcp):\/\//i;
const GLOB_CHARS = /[*?[{]/;

/**
 * Turns the inputs a user gave (files, folders, globs, URLs, `-`) into a sorted, de-duplicated list of specs.
 * Folders are walked recursively for video files; globs support `*`, `?`, `**`, `[abc]` and `{a,b}`.
 * The order is plain code-unit order of the resulting strings, the same on every machine, so `--shard i/N`
 * gives disjoint parts that together cover every input.
 *
 * @throws VideoNotFoundError when a path does not exist, or a folder or glob holds no video file.
 * @throws OptionError for a bad shard.
 * @example
 * const specs = await expandInputs(['clips/', 'rtsp://cam/1'], { shard: parseShard('0/2') });
 */
export async function expandInputs(specs: readonly string[], options: ExpandInputsOptions = {}): Promise<InputSpec[]> {
  const { shard, extensions = VIDEO_EXTENSIONS } = options;
  if (shard) validateShard(shard);
  const wanted = new Set(extensions.map((e) => e.toLowerCase().replace(/^\./, '')));
  const found = new Map<string, InputSpec>();
  for (const spec of specs) {
    for (const input of await expandOne(spec, wanted)) found.set(input.input, input);
  }
  const sorted = [...found.values()].sort((a, b) => (a.input < b.input ? -1 : a.input > b.input ? 1 : 0));
  return shard ? sorted.filter((_, i) => i % shard.count === shard.index) : sorted;
}

/**
 * Parses a `--shard` value `i/N` (0-based worker `i` of `N`).
 *
 * @throws OptionError when the value is not two integers with `0 <= i < N`.
 * @example
 * parseShard('1/4'); // { index: 1, count: 4 }
 */
export function parseShard(value: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(value);
  if (!match) throw new OptionError('--shard', value, 'i/N with integers 0 <= i < N (i is 0-based), e.g. 0/4');
  const shard = { index: Number(match[1]), count: Number(match[2]) };
  validateShard(shard, value);
  return shard;
}

function validateShard(shard: Shard, given: unknown = shard): void {
  const { index, count } = shard;
  if (!Number.isInteger(count) || count < 1) {
    throw new OptionError('--shard', given, `i/N with N a positive integer; got N = ${count}`);
  }
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw new OptionError(
      '--shard',
      given,
      `i/N with 0 <= i < N (i is 0-based, so the last of ${count} shards is ${count - 1}/${count})`,
    );
  }
}

async function expandOne(spec: string, extensions: Set<string>): Promise<InputSpec[]> {
  if (spec === '-') return [{ input: '-', kind: 'stdin', live: true }];
  if (URL_SCHEME.test(spec)) return [{ input: spec, kind: 'url', live: true }];
  const files = GLOB_CHARS.test(spec) ? await expandGlob(spec, extensions) : await expandPath(spec, extensions);
  return files.map((input) => ({ input, kind: 'file', live: false }));
}

async function expandPath(path: string, extensions: Set<string>): Promise<string[]> {
  const info = await stat(path).catch((cause: unknown) => {
    throw new VideoNotFoundError(path, { cause });
  });
  if (!info.isDirectory()) return [path];
  const files = (await walk(path, new Set())).filter((f) => hasExtension(f, extensions));
  if (files.length === 0) throw new VideoNotFoundError(`${path} (a folder with no ${[...extensions].join('/')} file)`);
  return files;
}

async function expandGlob(pattern: string, extensions: Set<string>): Promise<string[]> {
  const segments = pattern.split(/[\\/]/);
  const firstGlob = segments.findIndex((s) => GLOB_CHARS.test(s));
  // Walk only below the literal prefix of the pattern.
  const base = segments.slice(0, firstGlob).join('/') || (pattern.startsWith('/') ? '/' : '.');
  const info = await stat(base).catch(() => undefined);
  if (!info?.isDirectory()) throw new VideoNotFoundError(`${pattern} (the folder ${base} does not exist)`);
  // Walked paths come out of path.join, which drops `./` and doubled slashes; normalise the pattern the same way.
  const matcher = globToRegExp(posix.normalize(pattern.split(sep).join('/')));
  const files = (await walk(base, new Set())).filter(
    (f) => matcher.test(f.split(sep).join('/')) && hasExtension(f, extensions),
  );
  if (files.length === 0)
    throw new VideoNotFoundError(`${pattern} (the glob matches no ${[...extensions].join('/')} file)`);
  return files;
}

/** Every file below `dir`, following symlinks but visiting each real folder once (a link loop ends). */
async function walk(dir: string, seen: Set<string>): Promise<string[]> {
  const real = await realpath(dir);
  if (seen.has(real)) return [];
  seen.add(real);
  const entries = await readdir(dir, { withFileTypes: true });
  const out: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    const isDir =
      entry.isDirectory() || (entry.isSymbolicLink() && (await stat(path).catch(() => undefined))?.isDirectory());
    if (isDir) out.push(...(await walk(path, seen)));
    else out.push(path);
  }
  return out;
}

function hasExtension(path: string, extensions: Set<string>): boolean {
  const dot = path.lastIndexOf('.');
  return dot > path.lastIndexOf(sep) && extensions.has(path.slice(dot + 1).toLowerCase());
}

/** A glob as a regular expression over forward-slash paths. `**` spans folders; `*` and `?` do not. */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  const p = pattern.split('\\').join('/');
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') {
      if (p[i + 1] === '*') {
        // `**/` matches zero or more whole folders.
        const slash = p[i + 2] === '/';
        re += slash ? '(?:[^/]*/)*' : '.*';
        i += slash ? 2 : 1;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = p.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        const body = p
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\');
        re += `[${body}]`;
        i = end;
      }
    } else if (c === '{') {
      const end = p.indexOf('}', i + 1);
      if (end < 0) re += '\\{';
      else {
        re += `(?:${p
          .slice(i + 1, end)
          .split(',')
          .map(escapeRegExp)
          .join('|')})`;
        i = end;
      }
    } else re += escapeRegExp(c);
  }
  return new RegExp(`^${re}$`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
