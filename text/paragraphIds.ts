import { segmentSentences } from './segment.ts';
import type { Tokenizer } from './tokenizers/Tokenizer.ts';

/**
 * The sentences of a batch of paragraphs as token ids, in flat typed arrays (what a tokenizing thread sends back,
 * transferred, not copied): sentence `s` is `ids[ends[s - 1] .. ends[s])`, and paragraph `p` has `sentences[p]` of
 * them, in order.
 */
export interface ParagraphIds {
  ids: Int32Array<ArrayBuffer>;
  ends: Int32Array<ArrayBuffer>;
  sentences: Int32Array<ArrayBuffer>;
}

/**
 * Splits each paragraph into sentences (`segmentSentences`) and encodes each without special tokens: the numbers
 * `readSentences` + `tokenizeSentences` give, in flat arrays. The same function runs on the main thread and in the
 * tokenizing thread, so both give the same ids.
 */
export function paragraphIds(paragraphs: readonly string[], tokenizer: Tokenizer): ParagraphIds {
  let ids = new Int32Array(1024);
  let used = 0;
  const ends: number[] = [];
  const sentences = new Int32Array(paragraphs.length);
  for (const [p, text] of paragraphs.entries()) {
    const split = segmentSentences(text);
    sentences[p] = split.length;
    for (const sentence of split) {
      const encoded = tokenizer.encode(sentence, { addSpecialTokens: false });
      if (used + encoded.length > ids.length) {
        const grown = new Int32Array(Math.max(2 * ids.length, used + encoded.length));
        grown.set(ids.subarray(0, used));
        ids = grown;
      }
      for (let i = 0; i < encoded.length; i++) ids[used + i] = encoded[i]!;
      used += encoded.length;
      ends.push(used);
    }
  }
  // A copy of the used part: the buffer goes to another thread whole.
  return { ids: ids.slice(0, used), ends: Int32Array.from(ends), sentences };
}
