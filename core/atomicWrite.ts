import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

let counter = 0;

/**
 * Writes `data` to `filePath` so that a crash leaves either the old file or the new one, never a torn mix: the bytes
 * go to a temp name in the same folder (same file system, so the rename is atomic), are fsynced, renamed over the
 * target, and the folder is fsynced so the rename itself survives a power cut. Used by model saving and checkpoints.
 *
 * @example
 * await writeFileAtomic('runs/a/state.json', JSON.stringify(state));
 */
export async function writeFileAtomic(filePath: string, data: Uint8Array | string): Promise<void> {
  const temp = tempNameFor(filePath);
  try {
    await writeFileDurable(temp, data);
    await rename(temp, filePath);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
  await fsyncDir(path.dirname(filePath));
}

/** A temp name beside `filePath`, hidden, unique within this process and across processes. */
export function tempNameFor(filePath: string): string {
  return path.join(path.dirname(filePath), `.${path.basename(filePath)}.${process.pid}.${++counter}.tmp`);
}

/**
 * Writes `data` (or its pieces, one after the other) to `filePath` (created or truncated) and fsyncs it before
 * returning. Not atomic on its own.
 */
export async function writeFileDurable(
  filePath: string,
  data: Uint8Array | string | readonly Uint8Array[],
): Promise<void> {
  const handle = await open(filePath, 'w');
  try {
    if (typeof data === 'string' || data instanceof Uint8Array) await handle.writeFile(data);
    else {
      const { bytesWritten } = await handle.writev(data as Uint8Array[]);
      const total = data.reduce((n, piece) => n + piece.byteLength, 0);
      // libuv finishes short writes itself; a file that still came out short must not pass for whole.
      if (bytesWritten !== total) throw new Error(`${filePath}: wrote ${bytesWritten} of ${total} bytes`);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Fsyncs a folder so that renames and creations in it are durable. A no-op where folders cannot be opened (Windows). */
export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
  } catch {
    return;
  }
  try {
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on a folder; the rename is still atomic, only less durable.
  } finally {
    await handle.close();
  }
}

/** Writes a small JSON file next to a run (run.json), atomically. */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2));
}
