import { accessSync, chmodSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { BackendError } from '../core/errors.ts';

const require = createRequire(import.meta.url);

let ffmpegPath: string | undefined;
let ffprobePath: string | undefined;

/**
 * Path of the ffmpeg binary: `$TEMPO_FFMPEG` if set, else the static build shipped by `@ffmpeg-installer/ffmpeg`.
 * Resolved once and checked to be executable.
 *
 * @example
 * spawn(resolveFfmpegPath(), ['-version']);
 */
export function resolveFfmpegPath(): string {
  ffmpegPath ??= ensureExecutable(process.env.TEMPO_FFMPEG || loadInstallerPath('@ffmpeg-installer/ffmpeg'), 'ffmpeg');
  return ffmpegPath;
}

/**
 * Path of the ffprobe binary: `$TEMPO_FFPROBE` if set, else the static build shipped by `@ffprobe-installer/ffprobe`.
 * Resolved once; the installer's binary sometimes arrives without the exec bit, which is then added.
 */
export function resolveFfprobePath(): string {
  ffprobePath ??= ensureExecutable(
    process.env.TEMPO_FFPROBE || loadInstallerPath('@ffprobe-installer/ffprobe'),
    'ffprobe',
  );
  return ffprobePath;
}

function loadInstallerPath(pkg: string): string {
  try {
    return (require(pkg) as { path: string }).path;
  } catch (cause) {
    throw new BackendError(
      `${pkg} found no binary for ${process.platform}-${process.arch} (reinstall it, or set TEMPO_FFMPEG / TEMPO_FFPROBE)`,
      { cause },
    );
  }
}

function ensureExecutable(path: string, tool: string): string {
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    // npm tarballs can drop the exec bit (seen with @ffprobe-installer); restoring it is what the installer meant.
  }
  try {
    chmodSync(path, statSync(path).mode | 0o111);
    accessSync(path, constants.X_OK);
    return path;
  } catch (cause) {
    throw new BackendError(
      `${tool} at ${path} is not executable (run chmod +x ${path}, or set TEMPO_${tool.toUpperCase()})`,
      { cause },
    );
  }
}
