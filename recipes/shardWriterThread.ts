import { parentPort } from 'node:worker_threads';
import { ShardBuilder, type ShardParts } from './shards.ts';
import { writeShardFile, type ThreadMessage } from './shardWriter.ts';

// The thread of a ShardWriter: started from a plain-JS bundle of this file (core/bundledWorker.ts), it encodes,
// writes and hashes the shards whose columns it is sent.
const port = parentPort!;
const send = (message: ThreadMessage): void => port.postMessage(message);
port.on('message', ({ id, parts, temp }: { id: number; parts: ShardParts; temp: string }) => {
  writeShardFile(ShardBuilder.fromParts(parts), temp).then(
    (written) => send({ id, ...written }),
    (error: NodeJS.ErrnoException) =>
      send({ id, error: { name: error.name, message: error.message, code: error.code } }),
  );
});
send({ ready: true });
