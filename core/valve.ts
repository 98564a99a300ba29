/**
 * Backpressure across a push-based RxJS pipeline. RxJS cannot ask a producer to wait, so the consumer that
 * buffers (the trainer's batch queue) closes a shared valve when it holds enough, and sources that can pause
 * (ffmpeg's stdout pipe, a file read stream) pause until it opens again. Memory then stays bounded for a video
 * of any length: at most the consumer's queue plus one pipe chunk of frames.
 */
export class Valve {
  #open = true;
  #waiters: Array<() => void> = [];

  get isOpen(): boolean {
    return this.#open;
  }

  close(): void {
    this.#open = false;
  }

  open(): void {
    if (this.#open) return;
    this.#open = true;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Calls `wake` once the valve is open (at once if it already is). Returns a function that cancels the call. */
  onOpen(wake: () => void): () => void {
    if (this.#open) {
      wake();
      return () => {};
    }
    this.#waiters.push(wake);
    return () => {
      this.#waiters = this.#waiters.filter((w) => w !== wake);
    };
  }
}

/**
 * A valve open only while both `a` and `b` (if given) are: a decoder pauses for its lane (or a camera for the
 * alignment of its group) and for the consumer.
 */
export function bothOpen(a: Valve, b: Valve | undefined): Valve {
  if (!b) return a;
  return new (class extends Valve {
    override get isOpen(): boolean {
      return a.isOpen && b.isOpen;
    }
    override onOpen(wake: () => void): () => void {
      let cancel = (): void => {};
      const check = (): void => {
        if (!a.isOpen) cancel = a.onOpen(check);
        else if (!b.isOpen) cancel = b.onOpen(check);
        else wake();
      };
      check();
      return () => cancel();
    }
  })();
}
