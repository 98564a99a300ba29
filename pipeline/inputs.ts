import { InputNotFoundError, OptionError, VideoNotFoundError } from '../core/errors.ts';
import { resolveInputs } from '../core/resolveInputs.ts';

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
  /** Extensions (any case, with or without the dot) that folders and globs keep. Default `VIDEO_EXTENSIONS`. Explicit file paths are kept whatever their extension. */
  extensions?: readonly string[];
}

/**
 * Turns the inputs a user gave (files, folders, globs, URLs, `-`) into a sorted, de-duplicated list of specs,
 * with `resolveInputs`: folders are walked recursively for video files (hidden ones skipped, links followed, each
 * real file once); globs support `*`, `?`, `**`, `[abc]` and `{a,b}`; an existing path is never read as a glob.
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
  const found = new Map<string, InputSpec>();
  for (const input of await resolveVideoInputs(specs, extensions)) found.set(input.input, input);
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

async function resolveVideoInputs(specs: readonly string[], extensions: readonly string[]): Promise<InputSpec[]> {
  try {
    const resolved = await resolveInputs(specs, { extensions, stdin: true, urls: true, noun: 'video' });
    return resolved.map(({ input, kind }) => ({ input, kind, live: kind !== 'file' }));
  } catch (error) {
    if (error instanceof InputNotFoundError) {
      throw new VideoNotFoundError(error.input, { cause: error, message: error.message });
    }
    throw error;
  }
}
