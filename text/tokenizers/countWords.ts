import { type Observable, isObservable } from 'rxjs';

/** Texts a tokenizer can be trained on: an array or generator, an async iterable, or an RxJS stream. */
export type TextSource = Iterable<string> | AsyncIterable<string> | Observable<string>;

/**
 * Counts the words of every text of a source, as split by `words` (a tokenizer's normalizer + pre-tokenizer).
 * Only the counts are kept, so a corpus of any length trains in the memory of its distinct words.
 */
export async function countWords(source: TextSource, words: (text: string) => string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const add = (text: string): void => {
    for (const w of words(text)) counts.set(w, (counts.get(w) ?? 0) + 1);
  };
  if (isObservable(source)) {
    await new Promise<void>((resolve, reject) => source.subscribe({ next: add, error: reject, complete: resolve }));
  } else if (Symbol.asyncIterator in source) {
    for await (const text of source) add(text);
  } else {
    for (const text of source) add(text);
  }
  return counts;
}
