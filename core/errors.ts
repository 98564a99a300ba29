/**
 * One error base class with named subclasses. Every message names the input, the bad value and the fix;
 * the original error is kept in `cause`. The CLI prints `error.message` alone (no stack) unless `--verbose`.
 */
export class TempoError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A bad option or argument, caught when things are built (not deep in a loop). */
export class OptionError extends TempoError {
  constructor(
    /** The option's name as the user wrote it, e.g. `--batch` or `fps`. */
    readonly option: string,
    /** The value that was given. */
    readonly value: unknown,
    /** What would be accepted instead. */
    readonly expected: string,
  ) {
    super(
      value === undefined
        ? `${option} is missing: give ${expected}`
        : `${option} must be ${expected}; got ${JSON.stringify(value)}`,
    );
  }
}

/**
 * A path, folder or glob that names no file to read. `resolveInputs` throws it; the video and text readers rethrow
 * it as their own `VideoNotFoundError` or `CorpusError` with this one in `cause`.
 */
export class InputNotFoundError extends TempoError {
  constructor(
    message: string,
    /** The input as the user gave it: a path, a folder or a glob. */
    readonly input: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Base of every error about a video input. Carries the input path or URL and ffmpeg's stderr tail. */
export class VideoError extends TempoError {
  constructor(
    message: string,
    readonly input: string,
    readonly stderrTail = '',
    options?: { cause?: unknown },
  ) {
    super(
      stderrTail ? `${message}\n  ffmpeg said: ${stderrTail.trim().split('\n').slice(-3).join('\n  ')}` : message,
      options,
    );
  }
}

/**
 * The video file does not exist or cannot be read, or a folder or glob holds no video. `message` replaces the
 * default one when the caller knows more (what a folder or glob was searched for).
 */
export class VideoNotFoundError extends VideoError {
  constructor(input: string, { message, ...options }: { cause?: unknown; message?: string } = {}) {
    super(
      message ?? `video not found: ${input} (check the path; URLs need a scheme such as http:// or rtsp://)`,
      input,
      '',
      options,
    );
  }
}

/** ffmpeg could not decode the input: corrupt, truncated or in a format it does not know. */
export class VideoDecodeError extends VideoError {
  constructor(input: string, detail: string, stderrTail = '', options?: { cause?: unknown }) {
    super(
      `cannot decode video ${input}: ${detail} (re-encode it, e.g. ffmpeg -i in -c:v libx264 out.mp4)`,
      input,
      stderrTail,
      options,
    );
  }
}

/** The input has no video stream (an audio file, a subtitle file, a text file). */
export class NoVideoStreamError extends VideoError {
  constructor(input: string, stderrTail = '') {
    super(`no video stream in ${input} (give a file with a video track)`, input, stderrTail);
  }
}

/** A live stream (URL or stdin) delivered no frame for too long: the sender stopped or the network hangs. */
export class StreamStalledError extends VideoError {
  constructor(
    input: string,
    readonly stallTimeoutMs: number,
  ) {
    super(
      `live stream ${input} sent no frame for ${stallTimeoutMs} ms (check that the sender is still streaming and the address is right, or raise stallTimeoutMs for a slow source)`,
      input,
    );
  }
}

/** A checkpoint or saved model folder is missing or unreadable. */
export class ModelIOError extends TempoError {
  constructor(
    readonly path: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`model at ${path}: ${detail}`, options);
  }
}

/** An IDX (MNIST format) or label file is malformed. */
export class DataFormatError extends TempoError {
  constructor(
    readonly path: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${detail}`, options);
  }
}

/** The requested backend cannot run here. */
export class BackendError extends TempoError {}

/** Base of every error about a text corpus or dialogue input. Carries the file (or `-` for stdin) and the line. */
export class CorpusError extends TempoError {
  constructor(
    message: string,
    /** The file path, `-` for stdin, or the glob that was given. */
    readonly source: string,
    /** The 1-based line the problem is on; 0 when it concerns the whole input. */
    readonly line = 0,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A corpus line is not valid UTF-8. */
export class InvalidUtf8Error extends CorpusError {
  constructor(source: string, line: number, options?: { cause?: unknown }) {
    super(
      `${source}:${line}: not valid UTF-8 (re-encode the file, e.g. iconv -f latin1 -t utf-8, or pass --on-invalid skip to count and skip such lines)`,
      source,
      line,
      options,
    );
  }
}

/** A file given as a corpus holds binary data (NUL bytes), e.g. an image or a zip archive. */
export class BinaryCorpusError extends CorpusError {
  constructor(source: string, line: number) {
    super(
      `${source}:${line}: looks binary (NUL byte), not text (give a UTF-8 text file or a .gz of one, or pass --on-invalid skip to skip such files)`,
      source,
      line,
    );
  }
}

/** The inputs held no line of text at all. */
export class EmptyCorpusError extends CorpusError {
  constructor(sources: readonly string[]) {
    const shown =
      sources.length > 3 ? `${sources.slice(0, 3).join(', ')} and ${sources.length - 3} more` : sources.join(', ');
    super(
      `corpus is empty: no line of text in ${shown || '(no input)'} (check the paths, globs and file contents)`,
      sources[0] ?? '',
    );
  }
}

/** A dialogue record is malformed (a bad JSONL line, a dialogue without turns). */
export class DialogueFormatError extends CorpusError {
  constructor(source: string, line: number, detail: string, options?: { cause?: unknown }) {
    super(
      `${source}:${line}: ${detail} (fix the record, or pass --on-invalid skip to count and skip bad records)`,
      source,
      line,
      options,
    );
  }
}

/** Training diverged: a loss or a weight became NaN or infinite. The last good checkpoint is left as it was. */
export class DivergedError extends TempoError {
  constructor(
    /** The step (1-based) whose loss or update was not finite. */
    readonly step: number,
    /** What was not finite, e.g. `loss NaN` or `weights of conv_1/kernel`. */
    readonly what: string,
    /** The run's learning rate, named in the hint. */
    readonly learningRate: number | undefined,
  ) {
    super(
      `training diverged at step ${step}: ${what} is not finite` +
        ` (likely the learning rate${learningRate === undefined ? '' : ` ${learningRate}`} is too high: lower --lr, e.g. to 1e-3);` +
        ' the last good checkpoint was kept',
    );
  }
}

/** A run folder cannot be used as asked: it holds a run that would be overwritten, or has nothing to resume. */
export class RunFolderError extends TempoError {
  constructor(
    /** The run folder (`--out`). */
    readonly folder: string,
    detail: string,
  ) {
    super(`run folder ${folder}: ${detail}`);
  }
}

/** The given inputs produced no frames or no samples at all: nothing to train on, embed or count. */
export class NoSamplesError extends TempoError {
  constructor(
    /** The inputs, as given. */
    readonly inputs: readonly string[],
    detail: string,
  ) {
    const shown =
      inputs.length > 3 ? `${inputs.slice(0, 3).join(', ')} and ${inputs.length - 3} more` : inputs.join(', ');
    super(`${detail} from ${shown || '(no input)'}`);
  }
}

/**
 * A task cannot make samples from the inputs it was given (too few videos for negatives of other videos, videos
 * too short or too still for its windows): names the task, the inputs, what it needs and the fix. A
 * `NoSamplesError`, so whoever handles an empty run handles this too.
 *
 * @example
 * new TaskSamplesError('tracking', ['a.mp4'], 'needs at least 2 videos (its negatives are patches of other videos)', 'give --video more files');
 * // "tracking needs at least 2 videos (its negatives are patches of other videos): got 1 (a.mp4); give --video more files"
 */
export class TaskSamplesError extends NoSamplesError {
  constructor(
    /** The task's registry name. */
    readonly task: string,
    inputs: readonly string[],
    /** What the task did or needs, after its name: "needs at least 2 videos". */
    need: string,
    /** What to do about it. */
    fix: string,
  ) {
    super(inputs, `${task} ${need}`);
    const shown =
      inputs.length > 3 ? `${inputs.slice(0, 3).join(', ')} and ${inputs.length - 3} more` : inputs.join(', ');
    this.message = `${task} ${need}: got ${inputs.length} (${shown || 'no input'}); ${fix}`;
  }
}

/** A run stopped by SIGINT/SIGTERM (an aborted signal) before it had trained anything. */
export class StoppedError extends TempoError {
  constructor(where: string) {
    super(`stopped by a signal ${where}`);
  }
}

/** Base of every error about an image input (a PNG or JPEG file, an IDX file of images). Carries the input. */
export class ImageError extends TempoError {
  constructor(
    message: string,
    /** The image file (or `file.idx#i` for one image of an IDX file). */
    readonly input: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** An image input does not exist, or a folder or glob holds no PNG or JPEG. */
export class ImageNotFoundError extends ImageError {
  constructor(input: string, { message, ...options }: { cause?: unknown; message?: string } = {}) {
    super(
      message ?? `image not found: ${input} (check the path, or give a folder of PNG/JPEG files or an IDX file)`,
      input,
      options,
    );
  }
}

/** An image file cannot be read or decoded: corrupt, truncated, or not an image. */
export class ImageDecodeError extends ImageError {
  constructor(input: string, detail: string, options?: { cause?: unknown }) {
    super(
      `cannot decode image ${input}: ${detail} (re-save it as PNG or JPEG, or pass --on-bad-input skip to count and skip bad images)`,
      input,
      options,
    );
  }
}
