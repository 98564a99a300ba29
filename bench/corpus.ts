/**
 * Speed of `process-corpus` (recipes/processCorpus.ts, Arrow shards in recipes/shards.ts) on the Project Gutenberg
 * books in shared data: samples/s and MB/s of corpus text, against plain reading + sentence splitting + tokenizing
 * of the same corpus measured in the same run (the floor every task sampler sits on), so a loaded machine skews
 * both sides alike.
 *
 *   npx tsx bench/corpus.ts        # data from env TEMPO_DATA, default <repo>/../shared/data
 *
 * Measured on the 2-core machine under load from other jobs (load average 5-11), 3.21 MB, 28,725 sentences:
 * `ofBaseline` of each row, one figure a run (the ratios swing with the load; the baseline took 0.78-2.6 s).
 *
 * | run | gzip JSON lines (before, 2 runs) | Arrow (issue 11, 5 runs) |
 * |---|---|---|
 * | nsp | 0.577 / 0.61 | 0.677 / 0.96 / 1.005 / 0.906 / 0.813 |
 * | mlm | 0.597 / 0.597 | 0.718 / 0.384 / 0.73 / 0.58 / 0.674 |
 * | skipgram (3.42 M samples) | 0.032 / 0.041 (32.5 / 43.6 s, 43 MB) | 0.204 / 0.102 / 0.299 / 0.223 / 0.245 (4.3 / 25.3 / 4.8 / 6.9 / 6.3 s, 196 MB) |
 * | nsp,mlm,skipgram | 0.094 / 0.101 | 0.472 / 0.856 / 0.51 / 0.617 / 0.536 |
 *
 * Skip-gram's cost was the writing (JSON.stringify and gzip of 3.4 M small samples: about half of its profile),
 * then the sample objects queued between the sampler and the writer (garbage collection), and tokenizing the
 * corpus twice (the count pass, then the sampling). What remains is the sampler itself (one object and one
 * Float32Array per sample), its garbage, and 196 MB of uncompressed float32 columns to hash and fsync.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { lastValueFrom, reduce } from 'rxjs';
import { readSentences } from '../text/sources.ts';
import { processCorpus } from '../recipes/processCorpus.ts';
import type { TaskName } from '../tasks/registry.ts';
import { tokenizeSentences } from '../text/tokenizedSentence.ts';
import { resolveCorpusInputs } from '../text/resolveCorpusInputs.ts';
import { WordPiece } from '../text/tokenizers/WordPiece.ts';
import { readLines } from '../text/readCorpus.ts';
import { map } from 'rxjs';

/** One measured line of the bench. */
export interface CorpusRow {
  /** What ran: the baseline or process-corpus with a task list. */
  run: string;
  seconds: number;
  /** Samples written per second (baseline: sentences tokenized per second). */
  samplesPerS: number;
  /** Megabytes (10^6 bytes) of corpus text per second. */
  mbPerS: number;
  /** Arrow shard bytes written, MB. */
  outMb: number;
  /** mbPerS / the baseline's mbPerS. */
  ofBaseline: number;
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Runs the bench; returns no row (with a message) when the data is absent. */
export async function benchCorpus(
  dataDir = process.env.TEMPO_DATA ?? join(repoRoot, '..', 'shared', 'data'),
): Promise<CorpusRow[]> {
  const corpus = join(dataDir, 'text');
  if (!existsSync(corpus)) {
    console.log(`bench/corpus: skipped, no corpus at ${corpus} (set TEMPO_DATA to the folder holding text/)`);
    return [];
  }
  const files = await resolveCorpusInputs(corpus);
  let bytes = 0;
  for (const f of files) bytes += (await stat(f)).size;
  const dir = await mkdtemp(join(tmpdir(), 'tempo-bench-corpus-'));
  try {
    const tokenizer = await WordPiece.train(readLines(files, { onInvalid: 'skip' }).pipe(map((l) => l.text)), {
      vocabSize: 8000,
    });
    const tokenizerPath = join(dir, 'tokenizer.json');
    await tokenizer.save(tokenizerPath);

    const t0 = performance.now();
    const sentences = await lastValueFrom(
      readSentences(files, { onInvalid: 'skip' }).pipe(
        tokenizeSentences(tokenizer),
        reduce((n) => n + 1, 0),
      ),
    );
    const baseSeconds = (performance.now() - t0) / 1000;
    const base: CorpusRow = {
      run: 'read + split + tokenize',
      seconds: baseSeconds,
      samplesPerS: sentences / baseSeconds,
      mbPerS: bytes / 1e6 / baseSeconds,
      outMb: 0,
      ofBaseline: 1,
    };
    const rows = [base];
    for (const tasks of [['nsp'], ['mlm'], ['skipgram'], ['nsp', 'mlm', 'skipgram']] as TaskName[][]) {
      const outDir = join(dir, tasks.join('-'));
      const t1 = performance.now();
      const result = await processCorpus({
        text: files,
        tasks,
        tokenizer: tokenizerPath,
        outDir,
        onInvalid: 'skip',
        shardSize: 10000,
      });
      const seconds = (performance.now() - t1) / 1000;
      const samples = Object.values(result.manifest.counts).reduce((a, b) => a + b, 0);
      // Each task reads the corpus once, so MB/s counts the corpus once per task.
      const mbPerS = (bytes * tasks.length) / 1e6 / seconds;
      const outMb = result.manifest.shards.reduce((n, s) => n + s.bytes, 0) / 1e6;
      rows.push({
        run: `process-corpus ${tasks.join(',')}`,
        seconds,
        samplesPerS: samples / seconds,
        mbPerS,
        outMb,
        ofBaseline: mbPerS / base.mbPerS,
      });
    }
    console.log(
      `corpus: ${files.length} files, ${(bytes / 1e6).toFixed(2)} MB, ${sentences} sentences, ${tokenizer.vocabSize} ids`,
    );
    return rows.map((r) => ({
      ...r,
      seconds: round(r.seconds),
      samplesPerS: Math.round(r.samplesPerS),
      mbPerS: round(r.mbPerS),
      outMb: round(r.outMb),
      ofBaseline: round(r.ofBaseline),
    }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rows = await benchCorpus();
  if (rows.length > 0) console.table(rows);
}
