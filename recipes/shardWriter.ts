import { createHash } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import type { Worker } from 'node:worker_threads';
import { bundledWorker } from '../core/bundledWorker.ts';
import { writeFileDurable } from '../core/atomicWrite.ts';
import type { ShardBuilder } from './shards.ts';

/** What writing a shard file gives: its size and its hash, for the manifest. */
export interface WrittenShard {
  bytes: number;
  sha256: string;
}

/**
 * Encodes `shard` as Arrow IPC, writes it to `temp` and fsyncs it, and hashes the bytes; a failed write leaves no
 * temp behind. The rename into place is the caller's (a group of shards is renamed, then its folder fsynced once).
 */
export async function writeShardFile(shard: ShardBuilder, temp: string): Promise<WrittenShard> {
  const chunks = await shard.encodeChunks();
  await writeFileDurable(temp, chunks).catch(async (error: unknown) => {
    await unlink(temp).catch(() => {});
    throw error;
  });
  return { bytes: chunks.reduce((n, c) => n + c.byteLength, 0), sha256: sha256(chunks) };
}

/** Hex sha256 of `bytes` (or of its pieces, one after the other). */
export function sha256(bytes: Uint8Array | readonly Uint8Array[]): string {
  const hash = createHash('sha256');
  for (const chunk of bytes instanceof Uint8Array ? [bytes] : bytes) hash.update(chunk);
  return hash.digest('hex');
}

/**
 * {@link writeShardFile} on a thread of its own (a bundle started by `bundledWorker`), so the sampling thread only
 * fills columns: encoding, hashing and the write's system calls of 349 skip-gram shards took a fifth of
 * `process-corpus`'s time on one thread. A shard's columns are moved to the thread, not copied. Until the thread
 * is ready (about 0.1 s), or without one, shards are written on this thread: same bytes either way.
 */
export class ShardWriter {
  /** The thread once started, ready or not (ended by {@link close}). */
  #thread: Worker | undefined;
  /** The thread once ready: writes go to it. */
  #worker: Worker | undefined;
  readonly #waiting = new Map<number, { resolve: (w: WrittenShard) => void; reject: (e: Error) => void }>();
  #next = 0;
  #closed = false;
  #started: (ready: boolean) => void = () => {};
  /** Resolves true once writes go to the thread, false when they stay here (no thread, or it failed to start). */
  readonly ready = new Promise<boolean>((resolve) => (this.#started = resolve));

  /** Writes asked for so far, and the one that starts the thread (see the constructor). */
  #writes = 0;
  readonly #startAt: number;

  /**
   * `thread: false` writes every shard on this thread. Otherwise the thread starts with the first write after
   * `startAfter` (at once when 0): the first `startAfter` shards are written here, and so are those asked for before
   * the thread is ready.
   */
  constructor(thread = true, startAfter = 0) {
    this.#startAt = thread && startAfter > 0 ? startAfter : -1;
    if (!thread) this.#started(false);
    else if (startAfter === 0) this.#start();
  }

  #start(): void {
    bundledWorker(new URL('./shardWriterThread.ts', import.meta.url))
      .then((worker) => this.#attach(worker))
      .catch(() => this.#started(false));
  }

  /** Writes `shard` to `temp` (see {@link writeShardFile}); the builder is spent after this call. */
  write(shard: ShardBuilder, temp: string): Promise<WrittenShard> {
    if (this.#writes++ === this.#startAt && !this.#closed) this.#start();
    const worker = this.#worker;
    if (!worker) return writeShardFile(shard, temp);
    const id = this.#next++;
    const { transfer, ...parts } = shard.parts();
    return new Promise<WrittenShard>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      worker.postMessage({ id, parts: { ...parts, transfer: [] }, temp }, transfer);
    });
  }

  /** Ends the thread (after the writes awaited so far). */
  close(): void {
    this.#closed = true;
    this.#started(false);
    void this.#thread?.terminate();
    this.#thread = this.#worker = undefined;
  }

  #attach(worker: Worker): void {
    if (this.#closed) {
      void worker.terminate();
      this.#started(false);
      return;
    }
    this.#thread = worker;
    worker.on('message', (message: ThreadMessage) => {
      if ('ready' in message) {
        this.#worker = worker;
        this.#started(true);
        return;
      }
      const waiting = this.#waiting.get(message.id)!;
      this.#waiting.delete(message.id);
      if ('error' in message) waiting.reject(Object.assign(new Error(message.error.message), message.error));
      else waiting.resolve({ bytes: message.bytes, sha256: message.sha256 });
    });
    const lost = (error?: Error): void => {
      if (this.#thread === worker) this.#thread = this.#worker = undefined;
      const failure = error ?? new Error('the shard-writing thread stopped');
      for (const { reject } of this.#waiting.values()) reject(failure);
      this.#waiting.clear();
      this.#started(false);
    };
    worker.on('error', lost);
    worker.on('exit', () => lost());
  }
}

/** What the thread sends back. */
export type ThreadMessage =
  | { ready: true }
  | ({ id: number } & WrittenShard)
  | { id: number; error: { name: string; message: string; code?: string } };
