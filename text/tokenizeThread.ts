import { parentPort, workerData } from 'node:worker_threads';
import { paragraphIds } from './paragraphIds.ts';
import { tokenizerFromJson } from './tokenizers/loadTokenizer.ts';
import type { TokenizerJson } from './tokenizers/tokenizerJson.ts';

// The tokenizing thread of `tokenizedSentences`: started from a plain-JS bundle of this file (core/bundledWorker.ts),
// it splits and encodes the batches of paragraphs the main thread sends, and sends the ids back transferred.
const port = parentPort!;
const tokenizer = tokenizerFromJson((workerData as { tokenizer: TokenizerJson }).tokenizer);
port.on('message', ({ seq, paragraphs }: { seq: number; paragraphs: string[] }) => {
  const out = paragraphIds(paragraphs, tokenizer);
  port.postMessage({ seq, ...out }, [out.ids.buffer, out.ends.buffer, out.sentences.buffer]);
});
port.postMessage({ ready: true });
