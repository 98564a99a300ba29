import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { selectBackend } from '../../models/backend.ts';
import { Rng } from '../../core/rng.ts';
import { countCorpusTokens } from '../../recipes/textTasks.ts';
import { processCorpus } from '../../recipes/processCorpus.ts';
import { shardSamples } from '../../recipes/shards.ts';
import { pretrainText } from '../../recipes/pretrainText.ts';
import { parseTaskList } from '../../tasks/registry.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { WordVocab } from '../../text/tokenizers/WordVocab.ts';

// Issue 9: skip-gram and CBOW through the run paths (process-corpus, pretrain --text) read whole-corpus counts.

const WORDS = ['the', 'of', 'ship', 'sail', 'harbour', 'anchor', 'captain', 'wave'];
const WEIGHTS = [1000, 300, 100, 30, 10, 3, 2, 1];

let dir = '';
let corpus = '';
let tokenizer: WordVocab;
let tokenizerPath = '';
/** Token counts of the corpus, counted here by encoding every line. */
let counts: Float64Array;

test.before(async () => {
  await selectBackend({ backend: 'wasm', log: () => {} });
  dir = await mkdtemp(join(tmpdir(), 'tempo-text-tasks-'));
  const rng = new Rng(5);
  const total = WEIGHTS.reduce((a, b) => a + b, 0);
  const word = (): string => {
    let u = rng.next() * total;
    for (let k = 0; k < WORDS.length; k++) if ((u -= WEIGHTS[k]!) < 0) return WORDS[k]!;
    return WORDS[WORDS.length - 1]!;
  };
  // 300 paragraphs of 4 sentences of 8 words, blank lines between paragraphs.
  const paragraphs = Array.from({ length: 300 }, () =>
    Array.from({ length: 4 }, () => `Zz ${Array.from({ length: 8 }, word).join(' ')}.`).join('\n'),
  );
  const text = paragraphs.join('\n\n') + '\n';
  corpus = join(dir, 'skewed.txt');
  await writeFile(corpus, text);
  tokenizer = await WordVocab.train([text], { maxSize: 50, minCount: 1 });
  tokenizerPath = join(dir, 'tokenizer.json');
  await tokenizer.save(tokenizerPath);
  counts = new Float64Array(tokenizer.vocabSize);
  for (const line of text.split('\n'))
    for (const id of tokenizer.encode(line, { addSpecialTokens: false })) counts[id]!++;
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

const sum = (xs: ArrayLike<number>): number => Array.from(xs).reduce((a, b) => a + b, 0);

/** Chi-square of the negatives of samples (positive at `positive`, negatives after it) against noise P^power. */
function negativesFit(samples: Sample[], input: number, power: number): { statistic: number; critical: number } {
  const weights = Array.from(counts, (c) => (c > 0 ? c ** power : 0));
  const z = sum(weights);
  const P = weights.map((w) => w / z);
  const expected = new Array<number>(P.length).fill(0);
  const observed = new Array<number>(P.length).fill(0);
  for (const s of samples) {
    const targets = s.inputs[input]!;
    const p = targets[0]!;
    const negatives = targets.length - 1;
    // A negative equal to the positive is drawn again up to 4 times.
    const again = [0, 1, 2, 3, 4].reduce((a, j) => a + P[p]! ** j, 0);
    P.forEach((q, i) => (expected[i]! += negatives * (i === p ? P[p]! ** 5 : q * again)));
    for (const id of targets.subarray(1)) observed[id]!++;
  }
  let statistic = 0;
  let cells = 0;
  expected.forEach((e, i) => {
    if (e <= 0) return;
    statistic += (observed[i]! - e) ** 2 / e;
    cells++;
  });
  const df = cells - 1;
  const a = 2 / (9 * df);
  return { statistic, critical: df * (1 - a + 3.09 * Math.sqrt(a)) ** 3 };
}

test('countCorpusTokens counts every token of the whole corpus, whatever the worker shard', async (t) => {
  const counted = await countCorpusTokens(tokenizer, { text: [corpus] });
  t.deepEqual([...counted], [...counts]);
  const worker = await countCorpusTokens(tokenizer, { text: [corpus], shard: { index: 1, count: 2 } });
  t.deepEqual([...worker], [...counts]);
});

test('process-corpus (worker 0 of 2) draws skip-gram and CBOW negatives from unigram^0.75 of the whole corpus', async (t) => {
  const out = join(dir, 'shards');
  const result = await processCorpus({
    text: [corpus],
    tasks: ['skipgram', 'cbow'],
    tokenizer: tokenizerPath,
    outDir: out,
    shard: { index: 0, count: 2 },
    taskConfig: { maxLength: 12 },
    shardSize: 5000,
  });
  t.is(result.manifest.corpusTokens, sum(counts));
  for (const [task, input] of [
    ['skipgram', 1],
    ['cbow', 2],
  ] as const) {
    const samples = await lastValueFrom(shardSamples(out, task).pipe(toArray()));
    const fit = negativesFit(samples, input, 0.75);
    const raw = negativesFit(samples, input, 1);
    t.log(
      `${task}: ${samples.length} samples; chi-square vs unigram^0.75 ${fit.statistic.toFixed(1)} (p=0.001 at ${fit.critical.toFixed(1)}), vs raw unigram (control) ${raw.statistic.toFixed(0)}`,
    );
    t.true(fit.statistic < fit.critical, task);
    t.true(raw.statistic > raw.critical, `${task}: the raw unigram must not fit`);
  }
});

test.serial('pretrainText counts the corpus for skip-gram and reports it with the samples emitted', async (t) => {
  const result = await pretrainText({
    text: [corpus],
    tasks: parseTaskList('skipgram,nsp', ['skipgram', 'nsp']),
    tokenizer,
    taskConfig: { maxLength: 12, embeddingSize: 8 },
    hiddenSize: 8,
    steps: 3,
    batchSize: 8,
    seed: 1,
    progress: 'none',
  });
  result.encoder.dispose();
  Object.values(result.heads).forEach((h) => h.dispose());
  t.is(result.steps, 3);
  t.is(result.corpusTokens, sum(counts));
  t.true(Number(result.samples.skipgram!.emitted) > 0);
  const nsp = result.samples.nsp!;
  t.is(Number(nsp.positives) + Number(nsp.negatives), nsp.emitted);
  // NSP alone needs no counts: no counting pass.
  const alone = await pretrainText({
    text: [corpus],
    tasks: parseTaskList('nsp', ['nsp']),
    tokenizer,
    taskConfig: { maxLength: 12, embeddingSize: 8 },
    hiddenSize: 8,
    steps: 1,
    batchSize: 8,
    progress: 'none',
  });
  alone.encoder.dispose();
  Object.values(alone.heads).forEach((h) => h.dispose());
  t.is(alone.corpusTokens, undefined);
});
