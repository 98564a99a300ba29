import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { Observable } from 'rxjs';
import { bundledWorker } from '../core/bundledWorker.ts';
import { OptionError } from '../core/errors.ts';
import { bothOpen, Valve } from '../core/valve.ts';
import { paragraphIds, type ParagraphIds } from './paragraphIds.ts';
import { readLines } from './readCorpus.ts';
import { splitParagraphs } from './segment.ts';
import { readSentences, TEXT_PIECE_BYTES, type TextSourceOptions } from './sources.ts';
import { tokenizeSentences, type TokenizedSentence } from './tokenizedSentence.ts';
import type { Tokenizer } from './tokenizers/Tokenizer.ts';

/** Options of {@link tokenizedSentences}. */
export interface TokenizedSentencesOptions extends TextSourceOptions {
  /** Reading pauses while this valve is closed. */
  valve?: Valve;
  /**
   * Threads that split and encode paragraphs, this one included. Default 2 on a machine with 2 or more cores, else
   * 1 (all on this thread, as `readSentences` + `tokenizeSentences`). Changes the speed only, never the sentences.
   */
  threads?: number;
  /** Filled as batches are encoded: how many went to a tokenizing thread and how many were encoded here. */
  stats?: { onThreads: number; here: number };
  /** Called with each tokenizing thread once it runs (to watch it; tests end one mid-stream). */
  onThread?: (worker: Worker) => void;
}

/** Paragraph text a batch holds before it is encoded (here or on a tokenizing thread). */
const BATCH_CHARS = 32 * 1024;
/** Batches read but not yet emitted (waiting for a thread, or behind one that is) before reading pauses. */
const MAX_WAITING = 16;
/**
 * Batches a tokenizing thread holds at once, so it never waits for the next one. This thread answers a finished
 * batch only between its own tasks (a batch it encodes, its samplers): with 2, the thread was busy 75% of a 16 MB
 * NSP run, with 4 91-94%. The run's wall time did not move beyond the machine's noise (1.2-1.3x read + tokenize
 * either way, in two runs alternating with the code before).
 */
const PER_THREAD = 4;
/** Batches waiting for a thread before this one encodes the oldest itself. */
const BACKLOG = 2;

/**
 * The sentences of a text corpus as token ids: the same sentences, in the same order, with the same documents and
 * sources as `readSentences(inputs, options).pipe(tokenizeSentences(tokenizer))`, but split and encoded on
 * `threads` threads. This thread reads the lines and joins the paragraphs; batches of paragraphs go to a
 * tokenizing thread (a bundle started by {@link bundledWorker}) while it has room, and are encoded here otherwise,
 * then emitted in order. Splitting and encoding are most of the cost of reading a corpus, so a second core takes
 * about half of it, and this thread keeps time for the samplers and the shard writes downstream. Without a thread
 * (one core, or a bundle that fails to build) everything runs here, with the same result.
 *
 * @throws (via the stream) the errors of `readSentences`, after the sentences that precede them.
 */
export function tokenizedSentences(
  inputs: readonly string[],
  tokenizer: Tokenizer,
  options: TokenizedSentencesOptions = {},
): Observable<TokenizedSentence> {
  const threads = options.threads ?? Math.min(2, availableParallelism());
  if (!Number.isInteger(threads) || threads < 1)
    throw new OptionError('threads', threads, 'a positive integer (tokenizing threads, this one included)');
  if (threads === 1) return readSentences(inputs, options).pipe(tokenizeSentences(tokenizer));
  return new Observable<TokenizedSentence>((subscriber) => {
    const pool = new TokenizingThreads(threads - 1, tokenizer, options.onThread);
    const waiting = new Valve();
    const reading = bothOpen(waiting, options.valve);
    const order: Batch[] = [];
    const unsent: Batch[] = [];
    let pending = newBatch();
    let seen = 0;
    let document = 0;
    let upstream: { done: false } | { done: true; error?: unknown } = { done: false };

    const emit = (batch: Batch, out: ParagraphIds): void => {
      let s = 0;
      let start = 0;
      for (let p = 0; p < batch.documents.length && !subscriber.closed; p++) {
        for (let n = out.sentences[p]!; n > 0; n--) {
          const end = out.ends[s++]!;
          subscriber.next({
            ids: out.ids.subarray(start, end),
            document: batch.documents[p]!,
            source: batch.sources[p],
          });
          start = end;
        }
      }
    };
    const drain = (): void => {
      while (order.length > 0 && order[0]!.result && !subscriber.closed) emit(order[0]!, order.shift()!.result!);
      if (subscriber.closed) return;
      if (order.length < MAX_WAITING) waiting.open();
      if (upstream.done && order.length === 0) {
        if (upstream.error !== undefined) subscriber.error(upstream.error);
        else subscriber.complete();
      }
    };
    const encodeHere = (batch: Batch): void => {
      if (options.stats) options.stats.here++;
      batch.result = paragraphIds(batch.texts, tokenizer);
      batch.texts = [];
    };
    // Batches go to a thread while one has room. This thread encodes only what would otherwise wait: before any
    // thread is ready, past a backlog, while reading is paused, and after the last line; its time is better spent
    // reading and on the samplers downstream.
    const schedule = (): void => {
      try {
        while (unsent.length > 0) {
          if (pool.take(unsent[0]!, schedule)) {
            unsent.shift();
            if (options.stats) options.stats.onThreads++;
          } else if (!pool.ready || unsent.length > BACKLOG || upstream.done || !reading.isOpen)
            encodeHere(unsent.shift()!);
          else break;
        }
        drain();
      } catch (error) {
        // Also called from a thread's message: an encoding bug ends the stream, not the process.
        subscriber.error(error);
      }
    };
    const dispatch = (): void => {
      const batch = pending;
      pending = newBatch();
      if (batch.texts.length === 0) return;
      order.push(batch);
      unsent.push(batch);
      if (order.length >= MAX_WAITING) waiting.close();
      schedule();
    };
    // A thread that dies hands its batches back: they are encoded here (a bug in the encoding fails here too).
    pool.onLost = (batch) => {
      unsent.unshift(batch);
      schedule();
    };

    const shard = options.shard;
    const read = { valve: reading, onInvalid: options.onInvalid, onSkip: options.onSkip };
    const subscription = readLines(inputs, { ...read, maxLineBytes: TEXT_PIECE_BYTES })
      .pipe(splitParagraphs())
      .subscribe({
        next: (p) => {
          // readSentences numbers the paragraphs it keeps: every one, or those of this worker's shard.
          const k = seen++;
          if (shard && k % shard.count !== shard.index) return;
          pending.texts.push(p.text);
          pending.documents.push(document++);
          pending.sources.push(`${p.source}:${p.line}`);
          if ((pending.chars += p.text.length) >= BATCH_CHARS) dispatch();
        },
        error: (error: unknown) => {
          upstream = { done: true, error };
          dispatch();
          schedule();
        },
        complete: () => {
          upstream = { done: true };
          dispatch();
          schedule();
        },
      });
    return () => {
      subscription.unsubscribe();
      pool.close();
    };
  });
}

/** Paragraphs of one batch, and their ids once encoded. */
interface Batch {
  texts: string[];
  documents: number[];
  sources: string[];
  chars: number;
  result?: ParagraphIds;
}

function newBatch(): Batch {
  return { texts: [], documents: [], sources: [], chars: 0 };
}

/** The tokenizing threads of one stream: started at once, used once ready, ended with the stream. */
class TokenizingThreads {
  readonly #threads = new Set<Thread>();
  #seq = 0;
  #closed = false;
  /** Called with each batch a failed thread held, to be encoded elsewhere. */
  onLost: ((batch: Batch) => void) | undefined;

  readonly #onThread: ((worker: Worker) => void) | undefined;

  constructor(count: number, tokenizer: Tokenizer, onThread?: (worker: Worker) => void) {
    this.#onThread = onThread;
    const json = tokenizer.toJSON();
    for (let i = 0; i < count; i++) {
      bundledWorker(new URL('./tokenizeThread.ts', import.meta.url), { workerData: { tokenizer: json } })
        .then((worker) => this.#attach(worker))
        // Without a thread, every batch is encoded on this one: slower, same sentences.
        .catch(() => {});
    }
  }

  /** Whether a thread has started (and can take batches). */
  get ready(): boolean {
    for (const thread of this.#threads) if (thread.ready) return true;
    return false;
  }

  /** Sends `batch` to a ready thread with room, `done` called once its ids are in; false when none has room. */
  take(batch: Batch, done: () => void): boolean {
    for (const thread of this.#threads) {
      if (!thread.ready || thread.held.size >= PER_THREAD) continue;
      const seq = this.#seq++;
      thread.held.set(seq, { batch, done });
      thread.worker.postMessage({ seq, paragraphs: batch.texts });
      return true;
    }
    return false;
  }

  close(): void {
    this.#closed = true;
    for (const { worker } of this.#threads) void worker.terminate();
    this.#threads.clear();
  }

  #attach(worker: Worker): void {
    if (this.#closed) {
      void worker.terminate();
      return;
    }
    const thread: Thread = { worker, ready: false, held: new Map() };
    this.#threads.add(thread);
    worker.on('message', (message: { ready: true } | ({ seq: number } & ParagraphIds)) => {
      if ('ready' in message) {
        thread.ready = true;
        return;
      }
      const sent = thread.held.get(message.seq)!;
      thread.held.delete(message.seq);
      sent.batch.texts = [];
      sent.batch.result = { ids: message.ids, ends: message.ends, sentences: message.sentences };
      sent.done();
    });
    const lost = (): void => {
      if (this.#closed || !this.#threads.delete(thread)) return;
      void worker.terminate();
      for (const { batch } of thread.held.values()) this.onLost?.(batch);
      thread.held.clear();
    };
    worker.on('error', lost);
    worker.on('exit', lost);
    this.#onThread?.(worker);
  }
}

interface Thread {
  worker: Worker;
  ready: boolean;
  /** Batches sent and not yet back, by sequence number. */
  held: Map<number, { batch: Batch; done: () => void }>;
}
