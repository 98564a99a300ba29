/**
 * Trains each text and dialogue task briefly on real data and prints held-out figures:
 * skip-gram / CBOW rank accuracy and nearest neighbours, masked-LM and text-CPC accuracy each beside its
 * most-frequent-token baseline on the same held-out batches, NSP accuracy beside the majority label (Project
 * Gutenberg, NLTK selection), dialogue-order accuracy and ROC AUC on DailyDialog validation, and the AUC of
 * scoreDialogue for original vs shuffled validation dialogues.
 *
 *   npx tsx bench/textTasks.ts                    # data from env TEMPO_DATA, default <repo>/../shared/data
 *   BENCH_TASKS=mlm,nsp npx tsx bench/textTasks.ts   # only these (skipgram, cbow, mlm, nsp, text-cpc, dialogue-order)
 *   BENCH_SCALE=4 npx tsx bench/textTasks.ts      # 4x the steps
 *
 * Default length on 2 cores: the Gutenberg tasks ~15 min together, dialogue-order ~14 min (800 steps; measured
 * 821 s beside another run: validation accuracy 0.647, AUC 0.688, scoreDialogue original vs shuffled AUC 0.797).
 * Measured (issue 9, beside other jobs; BENCH_TASKS=mlm,nsp,text-cpc took 24:37 wall, skipgram,cbow 3:59): mlm
 * 250 steps in 663 s, masked accuracy 0.200 vs baseline 0.072 (always ","); nsp 200 steps in 336 s, 0.691 vs
 * majority label 0.512, AUC 0.751; text-cpc 400 steps in 402 s, future-token accuracy 0.074 vs baseline 0.062 (the
 * most frequent token present; chance 1/336 = 0.003), and with BENCH_SCALE=4 1600 steps in 1635 s (28:04 wall),
 * 0.094 vs 0.062; skipgram 1500 steps in 136 s, rank accuracy 0.328 vs 0.184; cbow 600 steps in 93 s, 0.495 vs
 * 0.178.
 *
 * Training items are reshuffled every epoch and samples go through a shuffle buffer: the samplers emit the pairs
 * of one sentence (or the windows of one dialogue) together, and batches of neighbours train far worse.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lastValueFrom, toArray } from 'rxjs';
import { selectBackend } from '../models/backend.ts';
import { Rng } from '../core/rng.ts';
import { createDialogueOrderTask, scoreDialogue } from '../tasks/dialogue/utteranceOrder.ts';
import { createCbowTask } from '../tasks/text/cbow.ts';
import { createMlmTask, mlmFrequencyBaseline } from '../tasks/text/maskedLm.ts';
import { createNspTask } from '../tasks/text/nextSentence.ts';
import { createSkipgramTask } from '../tasks/text/skipgram.ts';
import { createTextCpcTask, textCpcFrequencyBaseline } from '../tasks/text/textCpc.ts';
import { vocabularyOf, type TokenizedSentence } from '../text/tokenizedSentence.ts';
import { countTokens, nearestWords } from '../tasks/text/word2vec.ts';
import { readDialogues } from '../text/dialogue.ts';
import { readLines } from '../text/readCorpus.ts';
import { segmentSentences, splitParagraphs } from '../text/segment.ts';
import { WordVocab } from '../text/tokenizers/WordVocab.ts';
import { rocAuc } from '../evaluation/rocAuc.ts';
import { shuffleTurns } from './dialogueCoherence.ts';
import { byDocument, runTask } from './textTaskRun.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DATA = process.env.TEMPO_DATA ?? join(ROOT, '..', 'shared', 'data');
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const ALL_TASKS = ['skipgram', 'cbow', 'mlm', 'nsp', 'text-cpc', 'dialogue-order'];
const TASKS = (process.env.BENCH_TASKS ?? ALL_TASKS.join(','))
  .split(',')
  .map((t) => t.trim())
  .filter((t) => t.length > 0);
const steps = (n: number): number => Math.max(10, Math.round(n * SCALE));
const wanted = (name: string): boolean => TASKS.includes(name);
const QUERY_WORDS = ['father', 'mother', 'house', 'walked', 'said', 'letter', 'happy', 'emma'];

interface Row {
  task: string;
  steps: number;
  seconds: number;
  figures: string;
}

async function main(): Promise<void> {
  const gutenberg = join(DATA, 'text', 'gutenberg');
  const daily = join(DATA, 'dialogue', 'dailydialog');
  if (!existsSync(gutenberg) || !existsSync(daily)) {
    console.log(
      `bench/textTasks: skipped, no data at ${DATA} (set TEMPO_DATA to the folder holding text/gutenberg and dialogue/dailydialog)`,
    );
    return;
  }
  const unknown = TASKS.filter((t) => !ALL_TASKS.includes(t));
  if (unknown.length > 0)
    throw new Error(`BENCH_TASKS: unknown ${unknown.join(', ')}; use a comma list of ${ALL_TASKS.join(', ')}`);
  const backend = await selectBackend({ backend: 'wasm', log: () => {} });
  console.log(`backend ${backend.label}; data ${DATA}; scale ${SCALE}; tasks ${TASKS.join(',')}`);
  const rows: Row[] = [];
  if (ALL_TASKS.slice(0, 5).some(wanted)) rows.push(...(await benchText(gutenberg)));
  if (wanted('dialogue-order')) rows.push(await benchDialogue(daily));
  console.log('\n| task | steps | train s | held-out figures |\n|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.task} | ${r.steps} | ${r.seconds.toFixed(0)} | ${r.figures} |`);
}

/** Paragraphs of the Gutenberg books as documents of sentences, in a seeded shuffled order of paragraphs. */
async function readBooks(folder: string): Promise<string[][]> {
  const files = readdirSync(folder)
    .filter((f) => f.endsWith('.txt'))
    .map((f) => join(folder, f));
  const paragraphs = await lastValueFrom(readLines(files, { onInvalid: 'skip' }).pipe(splitParagraphs(), toArray()));
  const documents = paragraphs.map((p) => segmentSentences(p.text)).filter((d) => d.length > 0);
  return new Rng(1).shuffle(documents);
}

/** A word vocabulary of `maxSize` ids over the books, and their sentences tokenized, split 90/10 by paragraph. */
async function tokenizeBooks(documents: string[][], maxSize: number) {
  const tokenizer = await WordVocab.train(documents.flat(), { maxSize, minCount: 3 });
  const tokenized = documents.map((sentences, document) =>
    sentences.map((text): TokenizedSentence => ({
      ids: Int32Array.from(tokenizer.encode(text, { addSpecialTokens: false })),
      document,
    })),
  );
  const cut = Math.floor(tokenized.length * 0.9);
  return {
    tokenizer,
    vocabulary: vocabularyOf(tokenizer),
    trainSet: tokenized.slice(0, cut).flat(),
    heldOut: tokenized.slice(cut).flat(),
  };
}

async function benchText(folder: string): Promise<Row[]> {
  const documents = await readBooks(folder);
  const { tokenizer, vocabulary, trainSet, heldOut } = await tokenizeBooks(documents, 8000);
  console.log(
    `gutenberg: ${documents.length} paragraphs, ${trainSet.length} train / ${heldOut.length} held-out sentences, ${tokenizer.vocabSize} ids`,
  );
  const counts = countTokens(trainSet, vocabulary.vocabSize);
  const embeddingSize = 64;
  const rows: Row[] = [];

  for (const [name, make] of [
    ['skipgram', createSkipgramTask],
    ['cbow', createCbowTask],
  ] as const) {
    if (!wanted(name)) continue;
    const task = make({
      vocabSize: vocabulary.vocabSize,
      embeddingSize,
      window: 5,
      negatives: 5,
      subsample: 1e-3,
      counts,
    });
    // Cheap steps (no GRU: only embedding rows), so many of them and large batches.
    const run = await runTask(task, byDocument(trainSet), heldOut, {
      vocabSize: vocabulary.vocabSize,
      embeddingSize,
      maxLength: 24,
      steps: steps(name === 'skipgram' ? 1500 : 600),
      batchSize: 1024,
      learningRate: 1e-2,
      shuffle: 20000,
    });
    const neighbours = QUERY_WORDS.map(
      (w) =>
        `${w}: ${nearestWords(run.encoder, tokenizer, w, 5)
          .map((n) => n.word)
          .join(' ')}`,
    ).join('; ');
    console.log(`${name} neighbours: ${neighbours}`);
    // Chance, or picking the candidate of highest corpus count, whichever is higher (positives follow the
    // subsampled unigram, negatives unigram^0.75: frequency alone could beat chance).
    const input = name === 'skipgram' ? 1 : 2;
    const held = run.heldOutBatches.flat();
    const byCount = held.filter((s) => {
      const targets = s.inputs[input]!;
      return targets.subarray(1).every((id) => counts[id]! <= counts[targets[0]!]!);
    }).length;
    const baseline = Math.max(1 / 6, byCount / held.length);
    rows.push({
      task: name,
      steps: run.steps,
      seconds: run.seconds,
      figures: `rank acc ${run.metric.toFixed(3)} vs baseline ${baseline.toFixed(3)} (chance 0.167; most frequent candidate ${(byCount / held.length).toFixed(3)}); ${neighbours}`,
    });
    run.dispose();
  }

  if (wanted('mlm')) {
    // A small vocabulary and short sequences: the softmax over the vocabulary and the GRU over maxLength are the cost.
    const small = await tokenizeBooks(documents, 2000);
    const maxLength = 16;
    const mlm = createMlmTask({ vocabulary: small.vocabulary, maxLength });
    const mlmRun = await runTask(mlm, byDocument(small.trainSet), small.heldOut, {
      vocabSize: small.vocabulary.vocabSize,
      embeddingSize,
      maxLength,
      steps: steps(250),
      batchSize: 64,
      learningRate: 1e-2,
      shuffle: 2000,
    });
    // The same held-out batches the accuracy was measured on.
    const baseline = mlmFrequencyBaseline(
      mlmRun.heldOutBatches.flat().map((s) => s.label),
      mlm.labelShape([maxLength])[1]!,
    );
    rows.push({
      task: 'mlm',
      steps: mlmRun.steps,
      seconds: mlmRun.seconds,
      figures: `masked acc ${mlmRun.metric.toFixed(3)} vs most-frequent-token baseline ${baseline.accuracy.toFixed(3)} (always "${small.tokenizer.idToToken(baseline.id)}", ${baseline.predictions} held-out targets; ${small.vocabulary.vocabSize} ids, ${maxLength} tokens)`,
    });
    mlmRun.dispose();
  }

  if (wanted('nsp')) {
    const maxLength = 24;
    const nsp = createNspTask({ vocabulary, maxLength });
    const nspRun = await runTask(nsp, byDocument(trainSet), heldOut, {
      vocabSize: vocabulary.vocabSize,
      embeddingSize,
      maxLength,
      steps: steps(200),
      batchSize: 64,
      learningRate: 5e-3,
      shuffle: 2000,
    });
    const labels = nspRun.heldOutBatches.flat().map((s) => s.label[0]!);
    const positives = labels.filter((l) => l === 1).length;
    const majority = Math.max(positives, labels.length - positives) / labels.length;
    rows.push({
      task: 'nsp',
      steps: nspRun.steps,
      seconds: nspRun.seconds,
      figures: `acc ${nspRun.metric.toFixed(3)} vs majority label ${majority.toFixed(3)} (${positives} positive / ${labels.length - positives} negative held-out pairs), AUC ${nspRun.auc.toFixed(3)}`,
    });
    nspRun.dispose();
  }

  if (wanted('text-cpc')) {
    const maxLength = 24;
    const cpc = createTextCpcTask({ vocabulary, maxLength, steps: 3, embeddingSize });
    const cpcRun = await runTask(cpc, byDocument(trainSet), heldOut, {
      vocabSize: vocabulary.vocabSize,
      embeddingSize,
      maxLength,
      steps: steps(400),
      batchSize: 16,
      learningRate: 3e-3,
      shuffle: 1000,
    });
    const baseline = textCpcFrequencyBaseline(
      cpcRun.heldOutBatches.map((b) => b.map((s) => s.label)),
      maxLength,
      3,
    );
    rows.push({
      task: 'text-cpc',
      steps: cpcRun.steps,
      seconds: cpcRun.seconds,
      figures: `future-token acc ${cpcRun.metric.toFixed(3)} vs most-frequent-token baseline ${baseline.accuracy.toFixed(3)} (the most frequent token present, "${tokenizer.idToToken(baseline.id)}" overall; chance 1 of ${16 * (maxLength - 3)} candidates)`,
    });
    cpcRun.dispose();
  }
  return rows;
}

async function benchDialogue(folder: string): Promise<Row> {
  const trainDialogues = await lastValueFrom(
    readDialogues(join(folder, 'train', 'dialogues_train.txt')).pipe(toArray()),
  );
  const validation = await lastValueFrom(
    readDialogues(join(folder, 'validation', 'dialogues_validation.txt')).pipe(toArray()),
  );
  const tokenizer = await WordVocab.train(
    trainDialogues.flatMap((d) => d.turns),
    { maxSize: 8000, minCount: 3 },
  );
  const maxLength = 24;
  const task = createDialogueOrderTask({ tokenizer, maxLength, turns: 3 });
  const run = await runTask(
    task,
    trainDialogues.map((d) => [d]),
    validation,
    {
      vocabSize: tokenizer.vocabSize,
      embeddingSize: 64,
      maxLength,
      steps: steps(800),
      batchSize: 32,
      learningRate: 3e-3,
      shuffle: 2000,
    },
  );
  const scorer = { encoder: run.encoder, head: run.head, tokenizer, maxLength, turns: 3 };
  const rng = new Rng(3);
  const pool = validation.filter((d) => d.turns.length >= 3).slice(0, 200);
  const original = pool.map((d) => scoreDialogue(scorer, d).score ?? Number.NaN);
  const shuffled = pool.map(
    (d) => scoreDialogue(scorer, { ...d, turns: shuffleTurns(d.turns, rng) }).score ?? Number.NaN,
  );
  const shuffleAuc = rocAuc(original, shuffled);
  run.dispose();
  return {
    task: 'dialogue-order',
    steps: run.steps,
    seconds: run.seconds,
    figures: `validation acc ${run.metric.toFixed(3)}, AUC ${run.auc.toFixed(3)}; scoreDialogue original vs shuffled AUC ${shuffleAuc.toFixed(3)} (${pool.length} dialogues)`,
  };
}

await main();
