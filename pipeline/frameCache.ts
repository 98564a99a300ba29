import { statSync } from 'node:fs';
import { defer, Observable } from 'rxjs';
import { OptionError } from '../core/errors.ts';
import type { Valve } from '../core/valve.ts';
import { decodeFrames, type DecodeOptions } from './decodeFrames.ts';
import type { Frame } from './frame.ts';
import { isStreamInput } from './probeVideo.ts';

/**
 * Decoded frames of video files kept in memory up to a byte budget, so that the epochs after the first replay them
 * instead of running ffmpeg again. A run over short clips otherwise spends much of its time starting ffmpeg: each
 * `spawn` forks the whole Node process (its wasm heap included). Measured on the demo (32 clips of 48 frames at
 * 32x32, a new epoch every few steps), on a quiet 2-core machine: 2003 steps in its two minutes without the cache,
 * 2663 with it, and 43 s of system time down to 5.
 *
 * What is kept: every frame of a file decoded to the end without error, with the same decode options, while the
 * file's size and modification time are unchanged. A decode stopped early (an unsubscribe) or failing keeps nothing,
 * and a file whose frames would pass the budget is decoded again each time. Streams and URLs are never kept. Frames
 * are shared between replays: consumers must not write into `frame.data` (none of the project's samplers do).
 *
 * @example
 * const cache = new FrameCache(256 * 2 ** 20);
 * cache.decode('clip.mp4', { width: 64, height: 64 }); // ffmpeg
 * cache.decode('clip.mp4', { width: 64, height: 64 }); // from memory, once the first has completed
 */
export class FrameCache {
  readonly #entries = new Map<string, readonly Frame[]>();
  #bytes = 0;

  /** @param budgetBytes the most bytes of frames kept at once; 0 keeps nothing. */
  constructor(readonly budgetBytes: number) {
    if (!(budgetBytes >= 0)) throw new OptionError('--frame-cache', budgetBytes, 'a size in MB of at least 0');
  }

  /** Bytes of memory the kept frames hold now (the buffers under their pixels). */
  get bytes(): number {
    return this.#bytes;
  }

  /** `decodeFrames(input, options)`, replayed from memory when this file was decoded whole before. */
  decode(input: string, options: DecodeOptions = {}): Observable<Frame> {
    return defer(() => {
      const key = this.#key(input, options);
      if (key === undefined) return decodeFrames(input, options);
      const kept = this.#entries.get(key);
      if (kept) return replay(kept, options.valve);
      return this.#record(key, decodeFrames(input, options));
    });
  }

  /** The cache key: file, its size and mtime, and the options that change the frames; none for streams. */
  #key(input: string, o: DecodeOptions): string | undefined {
    if (this.budgetBytes === 0 || isStreamInput(input)) return undefined;
    let stat;
    try {
      stat = statSync(input);
    } catch {
      return undefined; // decodeFrames names the missing file
    }
    const { width, height, fps, pixelFormat, start, duration } = o;
    return JSON.stringify([input, stat.size, stat.mtimeMs, width, height, fps, pixelFormat ?? 'rgb', start, duration]);
  }

  /** Passes the frames on, keeping them once the decode has completed if they fit the budget. */
  #record(key: string, frames: Observable<Frame>): Observable<Frame> {
    return new Observable<Frame>((subscriber) => {
      let kept: Frame[] | undefined = [];
      let bytes = 0;
      let last: ArrayBufferLike | undefined;
      return frames.subscribe({
        next: (frame) => {
          if (kept) {
            // What keeping the frame holds in memory: the buffer under its pixels, which neighbouring frames of
            // one read of ffmpeg's output share (see Frame.data), counted once.
            const buffer = frame.data.buffer;
            if (buffer !== last) bytes += buffer.byteLength;
            last = buffer;
            if (this.#bytes + bytes > this.budgetBytes) kept = undefined;
            else kept.push(frame);
          }
          subscriber.next(frame);
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          if (kept && this.#bytes + bytes <= this.budgetBytes && !this.#entries.has(key)) {
            this.#entries.set(key, kept);
            this.#bytes += bytes;
          }
          subscriber.complete();
        },
      });
    });
  }
}

/** Emits `frames` in order, only while `valve` is open (as the decoder does), then completes. */
function replay(frames: readonly Frame[], valve: Valve | undefined): Observable<Frame> {
  return new Observable<Frame>((subscriber) => {
    let next = 0;
    let cancelWait = (): void => {};
    const pump = (): void => {
      while (next < frames.length && !subscriber.closed) {
        if (valve && !valve.isOpen) {
          cancelWait = valve.onOpen(pump);
          return;
        }
        subscriber.next(frames[next++]!);
      }
      if (!subscriber.closed) subscriber.complete();
    };
    pump();
    return () => cancelWait();
  });
}
