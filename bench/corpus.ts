/**
 * Speed of `process-corpus` (recipes/processCorpus.ts, Arrow shards in recipes/shards.ts) on the Project Gutenberg
 * books in shared data: samples/s and MB/s of corpus text, against plain reading + sentence splitting + tokenizing
 * of the same corpus measured in the same run (the floor every task sampler sits on), so a loaded machine skews
 * both sides alike.
 *
 *   npx tsx bench/corpus.ts        # data from env TEMPO_DATA, default <repo>/../shared/data
 *   npm run bench -- corpus --json # the same, one JSON line a row
 *   BENCH_CORPUS_COPIES=5 npx tsx bench/corpus.ts   # on five copies of the corpus (16 MB)
 *
 * Each figure is the median of 3 rounds (baseline, then every run, alternating; session 10 on): earlier
 * sessions' figures below are single runs.
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
 * corpus twice (the count pass, then the sampling).
 *
 * Session 8: skip-gram's rows drawn into typed columns a sentence at a time (the generator inline) and copied
 * into the shard columns whole, MLM and NSP inputs built in typed arrays, shard writes going on beside the
 * sampling. Same shards byte for byte (sha256 of all 349 skip-gram shards and of the nsp and mlm shards equal to
 * the code before). 5 runs each, alternating with the code before (a worktree of eff7357 running this same
 * bench), under load average 7-27 from other jobs on the 2 cores: wall-clock ratios swing with the load, so the
 * bench now also gives CPU seconds of the process (every thread) and `ofBaselineCpu`, the ratio by CPU time.
 *
 * | run | before: ofBaselineCpu | after: ofBaselineCpu | before: ofBaseline (wall) | after: ofBaseline (wall) |
 * |---|---|---|---|---|
 * | nsp | 0.68 / 0.84 / 0.79 / 0.70 / 0.74 | 0.83 / 0.82 / 0.91 / 0.74 / 0.89 | 0.73 / 0.79 / 0.68 / 0.63 / 1.09 | 0.75 / 1.08 / 1.07 / 0.49 / 1.07 |
 * | mlm | 0.65 / 0.84 / 0.71 / 0.73 / 0.68 | 0.70 / 0.78 / 0.93 / 0.83 / 0.88 | 0.73 / 0.89 / 0.63 / 0.67 / 0.81 | 0.73 / 1.10 / 1.13 / 0.91 / 0.93 |
 * | skipgram | 0.17 / 0.26 / 0.26 / 0.25 / 0.21 (CPU 4.9 / 4.4 / 4.9 / 5.2 / 5.0 s) | 0.25 / 0.24 / 0.33 / 0.31 / 0.28 (CPU 3.8 / 3.5 / 4.1 / 3.5 / 4.2 s) | 0.19 / 0.28 / 0.25 / 0.22 / 0.24 | 0.21 / 0.21 / 0.33 / 0.32 / 0.28 |
 * | nsp,mlm,skipgram | 0.53 / 0.71 / 0.66 / 0.62 / 0.57 | 0.62 / 0.62 / 0.77 / 0.75 / 0.83 | 0.52 / 0.74 / 0.27 / 0.51 / 0.79 | 0.59 / 0.56 / 0.60 / 0.82 / 1.04 |
 *
 * Skip-gram stays far from read + tokenize: the count pass alone is one read + tokenize, and what follows scales
 * with 196 MB of float32 columns (56 bytes a sample, 24 of them the constant label): Arrow encoding (about 1-2 ms
 * a shard of 562 kB), sha256, the write and its fsync, and their garbage; then the draws themselves (12 draws of
 * the generator a sample). Tried and not kept: tokenizing the files on 2 worker threads (each thread loads the
 * TypeScript through tsx: the count pass took 3-5 s instead of 1-2), and hashing with WebCrypto on the thread pool
 * (it copies the bytes on the calling thread first: in a micro-benchmark of 349 shards under load, 120-450 ms on the
 * calling thread against 180-320 ms for createHash).
 *
 * Session 9 (manifest version 3): number columns in the narrowest exact Arrow type (skip-gram ids uint16, labels
 * uint8, source indices int8), skip-gram drawn with an int32 generator state, encoded pieces written with writev
 * and hashed without a join. Same samples read back (sha256 over every sample). 3 runs alternating the gzip
 * JSON-lines code of the issue (e629069), the version-2 code (192753e) and this one, load average about 2, wall
 * seconds:
 *
 * | run | gzip JSON lines | version 2 | version 3 |
 * |---|---|---|---|
 * | read + split + tokenize | 0.81 / 0.83 / 0.77 | 0.96 / 0.65 / 0.73 | 0.93 / 0.77 / 0.79 |
 * | nsp (ofBaseline) | 0.70 / 0.45 / 0.45 | 0.88 / 0.83 / 0.73 | 0.77 / 0.68 / 0.60 |
 * | mlm (ofBaseline) | 0.57 / 0.46 / 0.38 | 0.71 / 0.81 / 0.83 | 0.86 / 0.65 / 0.72 |
 * | skipgram seconds (MB written) | 29.5 / 31.0 / 31.0 (43) | 2.94 / 2.15 / 2.28 (196) | 2.24 / 1.96 / 1.96 (74) |
 *
 * Then the tokenizer's word -> ids cache (same ids) and the count pass counting in a tap instead of an async loop;
 * 3 more runs alternating with the gzip code: skip-gram 1.99 / 2.08 / 1.77 s against 28.5 / 30.8 / 31.2 s
 * (14.3x / 14.8x / 17.6x); nsp 0.84 / 0.76 / 0.77 and mlm 0.59 / 0.68 / 0.69 of the (now faster) baseline, the gzip
 * code 0.62 / 0.46 / 0.59 and 0.52 / 0.47 / 0.56.
 *
 * Skip-gram is 13-18x the gzip code, against the 20x the issue asks: what is left is its count pass (one read +
 * tokenize, 0.8-0.9 s), the 42 M generator draws (about 0.35 s), and the Arrow writer's fixed cost of about 1 ms a
 * file over 349 files. Tried and not kept: encoding and writing shards on a worker thread (the thread loads the
 * TypeScript through tsx in 0.7-1.5 s of CPU, which the 2 cores pay during the count pass: skip-gram 2.7-3.6 s,
 * NSP and MLM 0.53 of the baseline).
 *
 * Session 10: the corpus split and encoded on a second thread (text/tokenizedSentences.ts), shards encoded and
 * written on a thread of their own (recipes/shardWriter.ts), both run from esbuild bundles (core/bundledWorker.ts,
 * about 0.1 s to start), and shards of about 4 MB read back instead of 10,000 samples (skip-gram: 51 files, not
 * 354). Same samples (sha256 over every sample). The bench now runs the library's defaults and each task again
 * with `threads: 1`. Three runs alternating with the gzip JSON-lines code (e629069), load average about 2, wall
 * seconds and ofBaseline:
 *
 * | run | gzip JSON lines | two threads (default) | one thread |
 * |---|---|---|---|
 * | read + split + tokenize, s | 0.79 / 0.84 / 0.68 | 0.88 / 0.87 / 0.89 | |
 * | nsp (ofBaseline) | 0.63 / 0.64 / 0.45 | 1.00 / 1.02 / 1.20 | 0.79 / 1.07 / 1.16 |
 * | mlm (ofBaseline) | 0.48 / 0.55 / 0.45 | 1.03 / 1.17 / 1.40 | 0.82 / 1.00 / 0.99 |
 * | skipgram, s | 32.4 / 31.1 / 30.3 | 1.33 / 1.15 / 1.03 | 1.41 / 1.33 / 1.30 |
 *
 * Skip-gram is 24x / 27x / 29x the gzip code. An earlier set of three pairs, with the shard-writing thread started
 * at once rather than with the first full shard, gave 22x / 22x / 25x, and NSP 1.00 / 0.80 / 0.95, MLM 1.07 / 0.78
 * / 1.01: the baseline's own spread between runs (0.56-0.89 s) is as large as the margin. The second thread pays
 * more on larger corpora: the count pass over 16 MB (these books five times) took 2.0-2.1 s against 3.2-3.3 s.
 *
 * Then this bench took the median of 3 rounds, and Rng, MLM's masking and its tally got cheaper (same samples).
 * Five runs: nsp 0.95 / 0.98 / 0.98 / 1.02 / 0.99 and mlm 0.90 / 1.03 / 0.83 / 1.08 / 0.91 of the baseline;
 * skip-gram 1.08-1.25 s. NSP and MLM sit about even with reading and tokenizing on one thread, not above it: the
 * main thread still reads, samples and fills the shards, and the tokenizing thread starts cold (its first batches
 * take 20-30 ms where the warm main thread takes 3).
 *
 * Session 11: the shard-writing thread starts with the third shard, not the first: NSP and MLM write two shards
 * here, so it never starts (the runs below started it with the second, at the very end; 16c5367 made it the third).
 * Started with the first full shard, near the end of the run, it slowed the tokenizing thread's last batches 2-4x.
 * And the tokenizing thread's bundle takes rxjs's ES module build (44 kB instead of 395 kB). Three runs
 * alternating with the code before (b21dbc5), ofBaseline:
 *
 * | run | before | after |
 * |---|---|---|
 * | nsp | 0.755 / 0.895 / 1.065 | 1.116 / 1.227 / 0.96 |
 * | mlm | 0.924 / 0.779 / 0.969 | 1.029 / 1.051 / 1.119 |
 * | skipgram, s | 1.02 / 1.01 / 1.18 | 1.27 / 1.19 / 1.24 |
 *
 * (The baseline took 0.52-0.72 s in the runs before, 0.77-0.79 s in the runs after: the machine was busier.) Three
 * earlier runs of the new code: nsp 1.008 / 0.912 / 0.905, mlm 1.007 / 0.864 / 1.061, skip-gram 0.94-0.97 s. A
 * timeline of one NSP run: the tokenizing thread is ready 100-200 ms after the stream starts and its first batches
 * take 20-37 ms (later ones 4-6 ms), so this thread encodes about 55% of the batches. Tried and not kept: a larger
 * young generation for the thread (`maxYoungGenerationSizeMb` 48; no change), `--max-semi-space-size=32` (no
 * change), two tokenizing threads (0.79-0.85 of the baseline: three busy threads on two cores).
 *
 * Then a tokenizing thread holds 4 batches instead of 2 (it waited for this thread's answer: busy 75% of a 16 MB
 * run, then 91-94%). The same measurement as this bench's nsp and mlm rows (median of 7 rounds, a fresh tokenizer
 * each), three runs alternating with session 10's code: nsp 1.00 / 1.16 / 1.00 against 0.95 / 0.97 / 0.93, mlm
 * 0.93 / 1.05 / 0.95 against 0.91 / 0.89 / 0.84; three bench runs: nsp 1.10 / 0.92 / 1.00, mlm 1.24 / 0.90 / 1.00.
 * On 16 MB (these books five times, median of 3 rounds, two runs alternating): nsp 1.30 / 1.20 and mlm 1.29 / 1.15
 * against 1.32 / 1.19 and 1.19 / 1.30 before: the gain is in the thread's start, which a larger corpus amortizes.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { lastValueFrom, reduce } from 'rxjs';
import { readSentences } from '../text/sources.ts';
import { processCorpus } from '../recipes/processCorpus.ts';
import type { TaskName } from '../tasks/registry.ts';
import { tokenizeSentences } from '../text/tokenizedSentence.ts';
import { resolveCorpusInputs } from '../text/resolveCorpusInputs.ts';
import { WordPiece } from '../text/tokenizers/WordPiece.ts';
import { loadTokenizer } from '../text/tokenizers/loadTokenizer.ts';
import { readLines } from '../text/readCorpus.ts';
import { map } from 'rxjs';
import { cpuSecondsSince, median } from './median.ts';

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
  /** CPU seconds of the process (user + system, every thread) during the run. */
  cpuSeconds: number;
  /**
   * ofBaseline by CPU time: (corpus passes / cpuSeconds) against the baseline's. On a machine shared with other
   * jobs the wall-clock ratio swings with their load; this one much less.
   */
  ofBaselineCpu: number;
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Runs the bench; returns no row (with a message) when the data is absent. */
export async function benchCorpus(
  dataDir = process.env.TEMPO_DATA ?? join(repoRoot, '..', 'shared', 'data'),
  repeats = 3,
  copies = Number(process.env.BENCH_CORPUS_COPIES ?? 1),
): Promise<CorpusRow[]> {
  const corpus = join(dataDir, 'text');
  if (!existsSync(corpus)) {
    console.log(`bench/corpus: skipped, no corpus at ${corpus} (set TEMPO_DATA to the folder holding text/)`);
    return [];
  }
  if (!(Number.isInteger(copies) && copies >= 1))
    throw new Error(
      `BENCH_CORPUS_COPIES=${process.env.BENCH_CORPUS_COPIES}: use a positive integer (copies of the corpus)`,
    );
  const dir = await mkdtemp(join(tmpdir(), 'tempo-bench-corpus-'));
  try {
    // With copies > 1, the corpus is that many copies of its files (a larger corpus of the same text: the fixed
    // costs of starting threads weigh less).
    const originals = await resolveCorpusInputs(corpus);
    const files: string[] = [];
    if (copies === 1) files.push(...originals);
    else {
      await mkdir(join(dir, 'text'));
      for (let c = 0; c < copies; c++)
        for (const [k, f] of originals.entries()) {
          const copy = join(dir, 'text', `${c}-${k}-${basename(f)}`);
          await copyFile(f, copy);
          files.push(copy);
        }
    }
    let bytes = 0;
    for (const f of files) bytes += (await stat(f)).size;
    const tokenizer = await WordPiece.train(readLines(files, { onInvalid: 'skip' }).pipe(map((l) => l.text)), {
      vocabSize: 8000,
    });
    const tokenizerPath = join(dir, 'tokenizer.json');
    await tokenizer.save(tokenizerPath);

    const runs: Array<{ tasks: TaskName[]; threads?: number }> = [
      ...([['nsp'], ['mlm'], ['skipgram'], ['nsp', 'mlm', 'skipgram']] as TaskName[][]).map((tasks) => ({ tasks })),
      // The same on this thread alone: what the tokenizing and shard-writing threads give.
      ...([['nsp'], ['mlm'], ['skipgram']] as TaskName[][]).map((tasks) => ({ tasks, threads: 1 })),
    ];
    // Rounds of the baseline then every run, alternating, each figure the median of its rounds: a machine shared
    // with other jobs swings a single run by a fifth.
    const base = { seconds: [] as number[], cpu: [] as number[] };
    const measured = runs.map(() => ({ seconds: [] as number[], cpu: [] as number[], samples: 0, outMb: 0 }));
    let sentences = 0;
    for (let round = 0; round < repeats; round++) {
      // A fresh tokenizer as process-corpus loads one: its word cache starts empty, as theirs does.
      const fresh = await loadTokenizer(tokenizerPath);
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      sentences = await lastValueFrom(
        readSentences(files, { onInvalid: 'skip' }).pipe(
          tokenizeSentences(fresh),
          reduce((n) => n + 1, 0),
        ),
      );
      base.seconds.push((performance.now() - t0) / 1000);
      base.cpu.push(cpuSecondsSince(c0));
      for (const [k, { tasks, threads }] of runs.entries()) {
        const outDir = join(dir, `${tasks.join('-')}-${threads ?? 'default'}-${round}`);
        const t1 = performance.now();
        const c1 = process.cpuUsage();
        const result = await processCorpus({
          text: files,
          tasks,
          tokenizer: tokenizerPath,
          outDir,
          onInvalid: 'skip',
          threads,
        });
        measured[k]!.seconds.push((performance.now() - t1) / 1000);
        measured[k]!.cpu.push(cpuSecondsSince(c1));
        measured[k]!.samples = Object.values(result.manifest.counts).reduce((a, b) => a + b, 0);
        measured[k]!.outMb = result.manifest.shards.reduce((n, s) => n + s.bytes, 0) / 1e6;
        await rm(outDir, { recursive: true, force: true });
      }
    }
    const baseSeconds = median(base.seconds);
    const baseCpu = median(base.cpu);
    const baseMbPerS = bytes / 1e6 / baseSeconds;
    const rows: CorpusRow[] = [
      {
        run: 'read + split + tokenize',
        seconds: baseSeconds,
        samplesPerS: sentences / baseSeconds,
        mbPerS: baseMbPerS,
        outMb: 0,
        ofBaseline: 1,
        cpuSeconds: baseCpu,
        ofBaselineCpu: 1,
      },
      ...runs.map(({ tasks, threads }, k): CorpusRow => {
        const seconds = median(measured[k]!.seconds);
        const cpuSeconds = median(measured[k]!.cpu);
        // Each task reads the corpus once, so MB/s counts the corpus once per task.
        const mbPerS = (bytes * tasks.length) / 1e6 / seconds;
        return {
          run: `process-corpus ${tasks.join(',')}${threads === 1 ? ' (1 thread)' : ''}`,
          seconds,
          samplesPerS: measured[k]!.samples / seconds,
          mbPerS,
          outMb: measured[k]!.outMb,
          ofBaseline: mbPerS / baseMbPerS,
          cpuSeconds,
          ofBaselineCpu: (tasks.length * baseCpu) / cpuSeconds,
        };
      }),
    ];
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
      cpuSeconds: round(r.cpuSeconds),
      ofBaselineCpu: round(r.ofBaselineCpu),
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
  console.log(
    `load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
}
