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
    super(`${option} must be ${expected}; got ${JSON.stringify(value)}`);
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
    super(stderrTail ? `${message}\n  ffmpeg said: ${stderrTail.trim().split('\n').slice(-3).join('\n  ')}` : message, options);
  }
}

/** The video file does not exist or cannot be read. */
export class VideoNotFoundError extends VideoError {
  constructor(input: string, options?: { cause?: unknown }) {
    super(`video not found: ${input} (check the path; URLs need a scheme such as http:// or rtsp://)`, input, '', options);
  }
}

/** ffmpeg could not decode the input: corrupt, truncated or in a format it does not know. */
export class VideoDecodeError extends VideoError {
  constructor(input: string, detail: string, stderrTail = '', options?: { cause?: unknown }) {
    super(`cannot decode video ${input}: ${detail} (re-encode it, e.g. ffmpeg -i in -c:v libx264 out.mp4)`, input, stderrTail, options);
  }
}

/** The input has no video stream (an audio file, a subtitle file, a text file). */
export class NoVideoStreamError extends VideoError {
  constructor(input: string, stderrTail = '') {
    super(`no video stream in ${input} (give a file with a video track)`, input, stderrTail);
  }
}

/** A checkpoint or saved model folder is missing or unreadable. */
export class ModelIOError extends TempoError {
  constructor(readonly path: string, detail: string, options?: { cause?: unknown }) {
    super(`model at ${path}: ${detail}`, options);
  }
}

/** An IDX (MNIST format) or label file is malformed. */
export class DataFormatError extends TempoError {
  constructor(readonly path: string, detail: string, options?: { cause?: unknown }) {
    super(`${path}: ${detail}`, options);
  }
}

/** The requested backend cannot run here. */
export class BackendError extends TempoError {}
