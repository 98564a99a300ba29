/**
 * The most-frequent-token baseline of the text tasks that predict tokens (masked LM, text CPC): always answering
 * the most frequent target is the trivial strategy their accuracy must beat, and on natural text it scores far
 * above chance (one token, "the", is several percent of English).
 */

/** The most frequent target token of a set of predictions, and the accuracy of always answering it. */
export interface TokenBaseline {
  /** The most frequent target id (the lowest id among ties; -1 when there is no prediction). */
  id: number;
  /** Its share of the predictions: the accuracy of always answering it. */
  accuracy: number;
  /** Predictions counted. */
  predictions: number;
}

/** Counts of target ids, and the most frequent one. */
export class TargetCounts {
  /** Counts of token ids (integers from 0), by id: a typed array, as MLM adds one a prediction. */
  #byId = new Float64Array(1024);
  /** Counts of any other number. */
  readonly #others = new Map<number, number>();
  #total = 0;

  add(id: number, times = 1): void {
    if (Number.isInteger(id) && id >= 0 && id < 2 ** 24) {
      if (id >= this.#byId.length) {
        const grown = new Float64Array(Math.max(id + 1, 2 * this.#byId.length));
        grown.set(this.#byId);
        this.#byId = grown;
      }
      this.#byId[id]! += times;
    } else this.#others.set(id, (this.#others.get(id) ?? 0) + times);
    this.#total += times;
  }

  get(id: number): number {
    return Number.isInteger(id) && id >= 0 && id < this.#byId.length ? this.#byId[id]! : (this.#others.get(id) ?? 0);
  }

  /** The most frequent id and its share. */
  baseline(): TokenBaseline {
    let best = -1;
    let most = 0;
    for (let id = 0; id < this.#byId.length; id++) if (this.#byId[id]! > most) [best, most] = [id, this.#byId[id]!];
    for (const [id, n] of this.#others) if (n > most || (n === most && id < best)) [best, most] = [id, n];
    return { id: best, accuracy: this.#total > 0 ? most / this.#total : 0, predictions: this.#total };
  }
}
