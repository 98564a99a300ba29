import type { Observable } from 'rxjs';
import type { Valve } from './valve.ts';

/** An observable as an async iterable, buffering what arrives while the consumer is busy. */
export async function* observableValues<T>(source: Observable<T>): AsyncGenerator<T> {
  const buffer: T[] = [];
  let done = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const subscription = source.subscribe({
    next: (v) => (buffer.push(v), wake?.()),
    error: (e: unknown) => ((failure = e), (done = true), wake?.()),
    complete: () => ((done = true), wake?.()),
  });
  try {
    for (;;) {
      if (buffer.length > 0) yield buffer.shift()!;
      else if (failure !== undefined) throw failure as Error;
      else if (done) return;
      else await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    subscription.unsubscribe();
  }
}

/**
 * An observable as an async iterable, with backpressure: the valve (which the text sources obey) closes while
 * more than `high` values wait, and opens again once the consumer has taken them.
 */
export async function* valveValues<T>(source: Observable<T>, valve: Valve, high: number): AsyncGenerator<T> {
  const buffer: T[] = [];
  let done = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const subscription = source.subscribe({
    next: (v) => {
      buffer.push(v);
      if (buffer.length > high) valve.close();
      poke();
    },
    error: (error: unknown) => ((failure = { error }), poke()),
    complete: () => ((done = true), poke()),
  });
  try {
    let head = 0;
    for (;;) {
      if (head < buffer.length) {
        const value = buffer[head]!;
        head++;
        if (head === buffer.length) {
          buffer.length = 0;
          head = 0;
          valve.open();
        }
        yield value;
      } else if (failure) throw failure.error;
      else if (done) return;
      else await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    subscription.unsubscribe();
  }
}
