import { Observable, type Subscription } from 'rxjs';
import { decodeFrames, type DecodeOptions } from './decodeFrames.ts';
import { OptionError, StreamStalledError } from '../core/errors.ts';
import type { Frame } from './frame.ts';

/** Options of `liveFrames`: those of `decodeFrames` plus how to survive a dropped or stalled stream. */
export interface LiveSourceOptions extends DecodeOptions {
  /** Reconnects in a row that bring no frame before the stream gives up (a frame resets the count). Default 5. */
  maxReconnects?: number;
  /** Wait before the first reconnect in milliseconds; each further one in a row waits twice as long. Default 250. */
  reconnectDelayMs?: number;
  /** Cap on the reconnect wait in milliseconds. Default 8000. */
  maxReconnectDelayMs?: number;
  /** Milliseconds without a frame (while the valve is open) after which the stream errors with `StreamStalledError`. Default 15000; `Infinity` never. */
  stallTimeoutMs?: number;
  /** Called before each reconnect: attempt number (1-based, in a row), its delay and why the stream dropped (undefined: it ended). */
  onReconnect?: (info: { attempt: number; delayMs: number; reason?: unknown }) => void;
}

interface LiveResolved {
  maxReconnects: number;
  reconnectDelayMs: number;
  maxReconnectDelayMs: number;
  stallTimeoutMs: number;
  onReconnect?: LiveSourceOptions['onReconnect'];
  decode: DecodeOptions;
}

/**
 * Frames of a live input, a URL (http(s), rtsp, udp, tcp, ...) or stdin (`'-'`), decoded by `decodeFrames` and
 * kept alive: when a URL's stream drops (ffmpeg ends or fails) it is opened again after an exponential backoff
 * (`reconnectDelayMs`, doubling, capped at `maxReconnectDelayMs`), up to `maxReconnects` tries in a row without
 * a frame; then the stream ends with the last error (or completes if the last try ended cleanly). Stdin cannot be
 * reopened: its end completes the stream. When no frame comes for `stallTimeoutMs` while the consumer wants
 * frames (its valve open), ffmpeg is stopped and the stream errors with `StreamStalledError`.
 *
 * Indices keep increasing across reconnects, and timestamps continue from the last frame (the time the stream
 * was down is not counted), so windows and clips sampled downstream stay ordered. Bad options throw
 * `OptionError` when the observable is built.
 *
 * @example
 * liveFrames('tcp://127.0.0.1:9000', { width: 64, height: 64, stallTimeoutMs: 5000 }).subscribe((f) => f.index);
 */
export function liveFrames(input: string, options: LiveSourceOptions = {}): Observable<Frame> {
  const o = validateLiveOptions(input, options);
  // Building (not subscribing) checks the decode options now, as decodeFrames promises.
  decodeFrames(input, o.decode);
  const reconnects = input !== '-' && /^[a-z][a-z0-9+.-]*:\/\//i.test(input);
  return new Observable<Frame>((subscriber) => {
    let inner: Subscription | undefined;
    let retryTimer: NodeJS.Timeout | undefined;
    let stallTimer: NodeJS.Timeout | undefined;
    let cancelValveWait: (() => void) | undefined;
    let failures = 0;
    let nextIndex = 0;
    let lastTimestamp = Number.NaN;
    let frameInterval = Number.NaN;

    const clearStall = (): void => {
      if (stallTimer) clearTimeout(stallTimer);
      stallTimer = undefined;
      cancelValveWait?.();
      cancelValveWait = undefined;
    };
    const armStall = (): void => {
      clearStall();
      if (!Number.isFinite(o.stallTimeoutMs)) return;
      stallTimer = setTimeout(onStall, o.stallTimeoutMs);
    };
    // A closed valve pauses ffmpeg on purpose: the watch restarts when the consumer wants frames again.
    const onStall = (): void => {
      stallTimer = undefined;
      const valve = o.decode.valve;
      if (valve && !valve.isOpen) {
        cancelValveWait = valve.onOpen(armStall);
        return;
      }
      inner?.unsubscribe();
      inner = undefined;
      subscriber.error(new StreamStalledError(input, o.stallTimeoutMs));
    };

    const connect = (): void => {
      retryTimer = undefined;
      const baseIndex = nextIndex;
      const baseTimestamp = Number.isNaN(lastTimestamp)
        ? 0
        : lastTimestamp + (Number.isNaN(frameInterval) ? 0 : frameInterval);
      armStall();
      inner = decodeFrames(input, o.decode).subscribe({
        next(frame) {
          failures = 0;
          armStall();
          if (frame.index > 0) frameInterval = frame.timestamp / frame.index;
          nextIndex = baseIndex + frame.index + 1;
          lastTimestamp = baseTimestamp + frame.timestamp;
          subscriber.next({ ...frame, index: baseIndex + frame.index, timestamp: lastTimestamp });
        },
        error: (error) => dropped(error),
        complete: () => dropped(undefined),
      });
    };

    const dropped = (reason: unknown): void => {
      clearStall();
      inner = undefined;
      if (!reconnects || failures >= o.maxReconnects) {
        if (reason !== undefined) subscriber.error(reason);
        else subscriber.complete();
        return;
      }
      const delayMs = Math.min(o.maxReconnectDelayMs, o.reconnectDelayMs * 2 ** failures);
      failures++;
      o.onReconnect?.({ attempt: failures, delayMs, reason });
      retryTimer = setTimeout(connect, delayMs);
    };

    connect();
    return () => {
      clearStall();
      if (retryTimer) clearTimeout(retryTimer);
      inner?.unsubscribe();
    };
  });
}

function validateLiveOptions(input: string, options: LiveSourceOptions): LiveResolved {
  const {
    maxReconnects = 5,
    reconnectDelayMs = 250,
    maxReconnectDelayMs = 8000,
    stallTimeoutMs = 15000,
    onReconnect,
    ...decode
  } = options;
  if (typeof input !== 'string' || input === '')
    throw new OptionError('input', input, 'a URL (http, rtsp, udp, tcp, ...) or "-" for stdin');
  if (!(Number.isInteger(maxReconnects) && maxReconnects >= 0))
    throw new OptionError('maxReconnects', maxReconnects, 'an integer >= 0');
  if (!(Number.isFinite(reconnectDelayMs) && reconnectDelayMs >= 0))
    throw new OptionError('reconnectDelayMs', reconnectDelayMs, 'a number of milliseconds >= 0');
  if (!(Number.isFinite(maxReconnectDelayMs) && maxReconnectDelayMs >= reconnectDelayMs)) {
    throw new OptionError(
      'maxReconnectDelayMs',
      maxReconnectDelayMs,
      `a number of milliseconds >= reconnectDelayMs (${reconnectDelayMs})`,
    );
  }
  if (!(stallTimeoutMs > 0))
    throw new OptionError(
      'stallTimeoutMs',
      stallTimeoutMs,
      'a positive number of milliseconds (or Infinity to never time out)',
    );
  return { maxReconnects, reconnectDelayMs, maxReconnectDelayMs, stallTimeoutMs, onReconnect, decode };
}
