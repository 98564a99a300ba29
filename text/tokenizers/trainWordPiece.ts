/** Options of {@link trainWordPieceVocab}. */
export interface WordPieceTrainOptions {
  /** Vocabulary size to reach, special tokens and alphabet included. */
  readonly vocabSize: number;
  /** A pair is merged only if it occurs at least this many times. */
  readonly minCount: number;
  /** Keep only this many most frequent characters in the alphabet; words with others are not trained on. */
  readonly limitAlphabet: number;
  /** Marks a piece that continues a word, `##` in BERT. */
  readonly prefix: string;
}

interface PairStat {
  readonly a: number;
  readonly b: number;
  count: number;
  readonly words: Set<number>;
}

// Pair keys pack two symbol ids in one number (ids stay far below 2^22, keys below 2^44 < 2^53).
const SHIFT = 2 ** 22;

/**
 * Learns WordPiece tokens from word counts (Schuster & Nakajima 2012, "Japanese and Korean voice search"; the
 * procedure of BERT's WordPiece as taught in the Hugging Face course): words start as characters, continuation
 * characters carry the `##` prefix, and each step merges the adjacent pair with the highest likelihood gain
 * `count(ab) / (count(a) * count(b))` until the vocabulary is full or no pair occurs `minCount` times.
 *
 * Returns the new tokens in the order learned: the alphabet (sorted) first, then the merges. Pair counts and the
 * words each pair occurs in are updated incrementally, so a merge touches only the words that contain it.
 */
export function trainWordPieceVocab(
  counts: ReadonlyMap<string, number>,
  reserved: number,
  options: WordPieceTrainOptions,
): string[] {
  const { prefix } = options;
  const alphabet = chooseAlphabet(counts, options.limitAlphabet);
  const symbols: string[] = [];
  const symbolId = new Map<string, number>();
  const intern = (s: string): number => {
    let id = symbolId.get(s);
    if (id === undefined) {
      id = symbols.length;
      symbols.push(s);
      symbolId.set(s, id);
    }
    return id;
  };
  const initial = new Set<string>();
  const forms: string[][] = [];
  const freqOfWord: number[] = [];
  for (const [word, count] of counts) {
    const chars = [...word];
    if (!chars.every((c) => alphabet.has(c))) continue;
    const form = chars.map((c, i) => (i === 0 ? c : prefix + c));
    for (const f of form) initial.add(f);
    forms.push(form);
    freqOfWord.push(count);
  }
  for (const s of [...initial].sort()) intern(s);
  const words = forms.map((form) => form.map((f) => symbolId.get(f)!));

  const symbolFreq: number[] = new Array<number>(symbols.length).fill(0);
  const pairs = new Map<number, PairStat>();
  const addWord = (w: number, sign: 1 | -1): void => {
    const seq = words[w]!;
    const count = freqOfWord[w]!;
    for (let i = 0; i < seq.length; i++) {
      symbolFreq[seq[i]!] = (symbolFreq[seq[i]!] ?? 0) + sign * count;
      if (i + 1 === seq.length) break;
      const key = seq[i]! * SHIFT + seq[i + 1]!;
      let stat = pairs.get(key);
      if (!stat) {
        stat = { a: seq[i]!, b: seq[i + 1]!, count: 0, words: new Set() };
        pairs.set(key, stat);
      }
      stat.count += sign * count;
      if (sign > 0) stat.words.add(w);
      else stat.words.delete(w);
      if (stat.count <= 0) pairs.delete(key);
    }
  };
  for (let w = 0; w < words.length; w++) addWord(w, 1);

  const learned = [...symbols];
  const target = options.vocabSize - reserved;
  while (learned.length < target) {
    const best = bestPair(pairs, symbolFreq, options.minCount);
    if (!best) break;
    const merged = symbols[best.a]! + stripPrefix(symbols[best.b]!, prefix);
    const isNew = !symbolId.has(merged);
    const id = intern(merged);
    if (isNew) learned.push(merged);
    for (const w of [...best.words]) {
      addWord(w, -1);
      words[w] = mergeIn(words[w]!, best.a, best.b, id);
      addWord(w, 1);
    }
  }
  return learned;
}

function stripPrefix(s: string, prefix: string): string {
  return s.startsWith(prefix) ? s.slice(prefix.length) : s;
}

function chooseAlphabet(counts: ReadonlyMap<string, number>, limit: number): Set<string> {
  const charCounts = new Map<string, number>();
  for (const [word, count] of counts) for (const c of word) charCounts.set(c, (charCounts.get(c) ?? 0) + count);
  const ranked = [...charCounts].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1));
  return new Set(ranked.slice(0, limit).map(([c]) => c));
}

/** The pair with the highest count(ab) / (count(a) count(b)); ties go to the more frequent, then the lower key. */
function bestPair(pairs: Map<number, PairStat>, freq: number[], minCount: number): PairStat | undefined {
  let best: PairStat | undefined;
  let bestScore = -1;
  for (const stat of pairs.values()) {
    if (stat.count < minCount) continue;
    const score = stat.count / (freq[stat.a]! * freq[stat.b]!);
    if (
      score > bestScore ||
      (score === bestScore && best && (stat.count > best.count || (stat.count === best.count && key(stat) < key(best))))
    ) {
      best = stat;
      bestScore = score;
    }
  }
  return best;
}

const key = (s: PairStat): number => s.a * SHIFT + s.b;

function mergeIn(seq: number[], a: number, b: number, merged: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < seq.length; i++) {
    if (i + 1 < seq.length && seq[i] === a && seq[i + 1] === b) {
      out.push(merged);
      i++;
    } else {
      out.push(seq[i]!);
    }
  }
  return out;
}
