import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { lastValueFrom, map, toArray } from 'rxjs';
import { emptyCorpusStats, readLines } from '../text/readCorpus.ts';
import { WordPiece } from '../text/tokenizers/WordPiece.ts';

/** One measured line of the bench. */
export interface Row {
  /** Which tokenizer ran. */
  tokenizer: string;
  /** Megabytes (10^6 bytes of UTF-8 input) encoded per second, median of the runs. */
  mbPerS: number;
  /** Median milliseconds to encode the whole corpus once. */
  ms: number;
  /** Ids produced over the corpus (special tokens included). */
  ids: number;
  /** mbPerS / the Hugging Face tokenizers.js line's mbPerS. */
  ofHf: number;
  /** Lines whose ids differ from tokenizers.js on the same tokenizer.json (0 = identical output). */
  mismatches: number;
}

/** Options of {@link benchTokenize}. */
export interface TokenizeBenchOptions {
  /** Folder of shared data. Default env TEMPO_DATA, else `<repo>/../shared/data`. */
  dataDir?: string;
  /** WordPiece vocabulary size. Default 8000. */
  vocabSize?: number;
  /** Share of the corpus lines (from the start of each book order) used to train. Default 0.3. */
  trainShare?: number;
  /** Timed runs per tokenizer (after one warm-up). Default 3. */
  runs?: number;
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Encoding speed of our WordPiece tokenizer (trained on part of the Project Gutenberg books in shared data) against
 * Hugging Face tokenizers.js (`@huggingface/tokenizers`, pure JS) loading the very tokenizer.json we save, on the
 * whole corpus. Also counts lines where the two disagree on ids. Returns [] (with a message) when the data is absent.
 *
 * @example
 * console.table(await benchTokenize({ runs: 1 }));
 */
export async function benchTokenize(options: TokenizeBenchOptions = {}): Promise<Row[]> {
  const dataDir = options.dataDir ?? process.env.TEMPO_DATA ?? join(repoRoot, '..', 'shared', 'data');
  const books = join(dataDir, 'text', 'gutenberg');
  if (!existsSync(books)) {
    console.log(`bench/tokenize: skipped, no corpus at ${books} (set TEMPO_DATA to the shared data folder)`);
    return [];
  }
  const { vocabSize = 8000, trainShare = 0.3, runs = 3 } = options;
  // A few lines of the Chesterton books are Latin-1, not UTF-8: skip and count them.
  const stats = emptyCorpusStats();
  const lines = await lastValueFrom(
    readLines(join(books, '*.txt'), { onInvalid: 'skip', stats }).pipe(
      map((l) => l.text),
      toArray(),
    ),
  );
  const bytes = lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
  const trainStart = performance.now();
  const ours = await WordPiece.train(lines.slice(0, Math.floor(lines.length * trainShare)), { vocabSize });
  const trainMs = performance.now() - trainStart;
  const uncached = new WordPiece(ours.parts, { ...ours.model, cacheWords: false });
  const hf = new HfTokenizer(ours.toJSON(), {});

  const oursIds = lines.map((l) => ours.encode(l));
  const mismatches = lines.filter((l, i) => !sameIds(hf.encode(l).ids, oursIds[i]!)).length;
  const time = (encode: (text: string) => number[]): { ms: number; ids: number } => {
    let ids = 0;
    const times: number[] = [];
    for (let r = 0; r <= runs; r++) {
      const start = performance.now();
      ids = 0;
      for (const l of lines) ids += encode(l).length;
      if (r > 0) times.push(performance.now() - start);
    }
    return { ms: median(times), ids };
  };
  const measured = [
    { tokenizer: 'tokenizers.js (@huggingface/tokenizers 0.2)', mismatches: 0, ...time((l) => hf.encode(l).ids) },
    { tokenizer: 'tempo-ssl WordPiece (word cache)', mismatches, ...time((l) => ours.encode(l)) },
    { tokenizer: 'tempo-ssl WordPiece (no cache)', mismatches, ...time((l) => uncached.encode(l)) },
  ];
  const mbPerS = (ms: number): number => bytes / 1e6 / (ms / 1000);
  const hfRate = mbPerS(measured[0]!.ms);
  console.log(
    `corpus: ${stats.files} books, ${lines.length} lines (${stats.invalidLines} invalid UTF-8 skipped), ${(bytes / 1e6).toFixed(2)} MB; trained on ${Math.round(trainShare * 100)}% in ${trainMs.toFixed(0)} ms, vocab ${ours.vocabSize}`,
  );
  return measured.map((m) => ({
    tokenizer: m.tokenizer,
    mbPerS: round(mbPerS(m.ms)),
    ms: round(m.ms),
    ids: m.ids,
    ofHf: round(mbPerS(m.ms) / hfRate),
    mismatches: m.mismatches,
  }));
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.table(await benchTokenize());
}
