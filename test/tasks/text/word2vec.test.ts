import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { from, lastValueFrom, toArray } from 'rxjs';
import { selectBackend } from '../../../models/backend.ts';
import { OptionError } from '../../../core/errors.ts';
import { Rng } from '../../../core/rng.ts';
import { train } from '../../../training/trainer.ts';
import { createCbowTask } from '../../../tasks/text/cbow.ts';
import { createSkipgramTask } from '../../../tasks/text/skipgram.ts';
import {
  NoiseDistribution,
  WordSampler,
  countTokens,
  keepProbabilities,
  negativeSamplingLoss,
  nearestWords,
  positiveRankAccuracy,
  validateWord2vecOptions,
} from '../../../tasks/text/word2vec.ts';
import { skipgram } from '../../../tasks/text/skipgram.ts';
import type { TokenizedSentence } from '../../../text/tokenizedSentence.ts';
import type { Sample } from '../../../pipeline/sample.ts';
import { heldOutMetric, permuteTokens } from './_heldOut.ts';
import { WordVocab } from '../../../text/tokenizers/WordVocab.ts';
import { buildTextEncoder } from '../../../models/textEncoder.ts';
import { WORDS, lookup, mean, proceduralSentences, topicOf } from './_corpus.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));
const sentences = proceduralSentences(300, 1);
const heldOut = proceduralSentences(100, 31);
const vocabSize = WORDS.length;

test('the negative-sampling loss equals a naive per-element reference', (t) => {
  const logits = [
    [2, -1, 0.5],
    [-3, 4, 0],
  ];
  const labels = [
    [1, 0, 0],
    [1, 0, 0],
  ];
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  const expected = mean(
    logits.map((row) => -Math.log(sigmoid(row[0]!)) - row.slice(1).reduce((s, x) => s + Math.log(sigmoid(-x)), 0)),
  );
  const actual = tf.tidy(() => negativeSamplingLoss(tf.tensor2d(labels), tf.tensor2d(logits)).dataSync()[0]!);
  t.true(Math.abs(actual - expected) < 1e-5, `${actual} vs ${expected}`);
  const accuracy = tf.tidy(() => positiveRankAccuracy(tf.tensor2d(labels), tf.tensor2d(logits)).dataSync()[0]!);
  t.is(accuracy, 0.5);
});

/** Pearson's chi-square of observed counts against expected ones (cells with expectation > 0). */
function chiSquare(observed: ArrayLike<number>, expected: ArrayLike<number>): { statistic: number; df: number } {
  let statistic = 0;
  let cells = 0;
  for (let i = 0; i < expected.length; i++) {
    if (expected[i]! <= 0) continue;
    statistic += (observed[i]! - expected[i]!) ** 2 / expected[i]!;
    cells++;
  }
  return { statistic, df: cells - 1 };
}

/** The chi-square quantile at p = 0.999 (Wilson-Hilferty), what a correct sampler exceeds once in 1000 runs. */
function critical(df: number): number {
  const a = 2 / (9 * df);
  return df * (1 - a + 3.09 * Math.sqrt(a)) ** 3;
}

/** A tiny corpus of known, skewed counts: ids 5..10 drawn with weights 1000, 300, 100, 30, 10, 3 (or reversed). */
function skewedSentences(count: number, seed: number, reversed = false): TokenizedSentence[] {
  const rng = new Rng(seed);
  const weights = reversed ? [3, 10, 30, 100, 300, 1000] : [1000, 300, 100, 30, 10, 3];
  const total = weights.reduce((a, b) => a + b, 0);
  const draw = (): number => {
    let u = rng.next() * total;
    for (let k = 0; k < weights.length; k++) if ((u -= weights[k]!) < 0) return 5 + k;
    return 5 + weights.length - 1;
  };
  return Array.from({ length: count }, (_, d) => ({ ids: Int32Array.from({ length: 8 }, draw), document: d }));
}

const power = (counts: ArrayLike<number>, p: number): number[] => {
  const w = Array.from(counts, (c) => (c > 0 ? c ** p : 0));
  const z = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / z);
};

test('the noise distribution is count^0.75 / Z, and its draws pass a chi-square test that raw counts fail', (t) => {
  const counts = [0, 16, 1, 0, 81, 5];
  const noise = new NoiseDistribution(counts);
  const expected = power(counts, 0.75);
  noise.probabilities.forEach((p, i) => t.true(Math.abs(p - expected[i]!) < 1e-12, `P(${i}) ${p} vs ${expected[i]}`));
  const rng = new Rng(4);
  const draws = 100000;
  const observed = new Array<number>(counts.length).fill(0);
  for (let n = 0; n < draws; n++) observed[noise.draw(rng)]!++;
  t.is(observed[0], 0);
  t.is(observed[3], 0);
  const fit = chiSquare(
    observed,
    expected.map((p) => p * draws),
  );
  t.log(
    `chi-square vs count^0.75: ${fit.statistic.toFixed(1)} (df ${fit.df}, p=0.001 at ${critical(fit.df).toFixed(1)})`,
  );
  t.true(fit.statistic < critical(fit.df));
  // Broken control: the same draws against the raw unigram distribution must fail.
  const raw = chiSquare(
    observed,
    power(counts, 1).map((p) => p * draws),
  );
  t.log(`chi-square vs raw counts (control): ${raw.statistic.toFixed(0)}`);
  t.true(raw.statistic > critical(raw.df));
});

test('the skip-gram sampler draws its negatives from unigram^0.75 of the whole-corpus counts', async (t) => {
  const corpus = skewedSentences(1500, 7);
  const counts = countTokens(corpus, 11);
  const task = createSkipgramTask({ vocabSize: 11, embeddingSize: 4, window: 2, negatives: 5, subsample: 0, counts });
  const samples = await lastValueFrom(from(corpus).pipe(task.sampler({ rng: new Rng(8) }), toArray()));
  // Expected counts, exactly: a negative equal to the positive p is drawn again up to 4 times, so it is i != p with
  // probability P(i) (1 + P(p) + ... + P(p)^4), and p itself with probability P(p)^5.
  const expectedOf = (P: number[]): number[] => {
    const expected = new Array<number>(11).fill(0);
    for (const s of samples) {
      const p = s.inputs[1]![0]!;
      const again = [0, 1, 2, 3, 4].reduce((a, j) => a + P[p]! ** j, 0);
      P.forEach((q, i) => (expected[i]! += 5 * (i === p ? P[p]! ** 5 : q * again)));
    }
    return expected;
  };
  const observed = new Array<number>(11).fill(0);
  for (const s of samples) for (const id of s.inputs[1]!.subarray(1)) observed[id]!++;
  const fit = chiSquare(observed, expectedOf(power(counts, 0.75)));
  const raw = chiSquare(observed, expectedOf(power(counts, 1)));
  t.log(
    `${samples.length * 5} negatives: chi-square vs unigram^0.75 ${fit.statistic.toFixed(1)} (df ${fit.df}, p=0.001 at ${critical(fit.df).toFixed(1)}); vs raw unigram (control) ${raw.statistic.toFixed(0)}`,
  );
  t.true(fit.statistic < critical(fit.df));
  t.true(raw.statistic > critical(raw.df));
});

test('subsampling keeps each word with the probability of its whole-corpus frequency, alike in epochs 1 and 2', (t) => {
  // The first 100 sentences favour the ids the rest of the corpus makes rare: counts gathered as the stream goes
  // would judge id 5 rare there, whole-corpus counts know it is frequent.
  const corpus = [...skewedSentences(100, 10, true), ...skewedSentences(2000, 9)];
  const counts = countTokens(corpus, 11);
  const keep = keepProbabilities(counts, 0.05);
  // By hand for id 5: min(1, sqrt(t / f) + t / f).
  const f5 = counts[5]! / counts.reduce((a, b) => a + b, 0);
  t.true(Math.abs(keep[5]! - (Math.sqrt(0.05 / f5) + 0.05 / f5)) < 1e-12);
  t.true(keep[5]! < 0.5 && keep[10] === 1);
  /** Kept rate of each id over the first 50 sentences and over the epoch, and whether they match `keep`. */
  const measure = (sampleCounts: ArrayLike<number>, seed: number): { ok: boolean; detail: string } => {
    const words = new WordSampler(
      validateWord2vecOptions({ vocabSize: 11, subsample: 0.05, counts: sampleCounts }),
      new Rng(seed),
    );
    const seen = [new Array<number>(11).fill(0), new Array<number>(11).fill(0)];
    const kept = [new Array<number>(11).fill(0), new Array<number>(11).fill(0)];
    corpus.forEach((s, n) => {
      const parts = n < 50 ? [0, 1] : [1];
      for (const id of s.ids) for (const p of parts) seen[p]![id]!++;
      for (const id of words.keep(s.ids)) for (const p of parts) kept[p]![id]!++;
    });
    let ok = true;
    const detail: string[] = [];
    for (const [p, part] of ['first 50 sentences', 'epoch'].entries()) {
      for (const id of [5, 6, 7, 8, 9, 10]) {
        const sd = Math.sqrt((keep[id]! * (1 - keep[id]!)) / seen[p]![id]!);
        const rate = kept[p]![id]! / seen[p]![id]!;
        ok &&= Math.abs(rate - keep[id]!) <= 4 * sd;
        detail.push(`${part} id ${id}: ${rate.toFixed(3)} vs ${keep[id]!.toFixed(3)} ± ${sd.toFixed(3)}`);
      }
    }
    return { ok, detail: detail.join('; ') };
  };
  // Each epoch's sampler is a fresh subscription with its own generator, as in a run.
  for (const [epoch, seed] of [
    [1, 11],
    [2, 12],
  ] as const) {
    const { ok, detail } = measure(counts, seed);
    t.true(ok, `epoch ${epoch}: ${detail}`);
  }
  // Broken control: the counts of what a stream has read by sentence 100 must miss the whole-corpus rates.
  const early = measure(countTokens(corpus.slice(0, 100), 11), 13);
  t.log(`control (counts of the first 100 sentences): ${early.detail}`);
  t.false(early.ok);
});

test("a word2vec sampler without corpus counts refuses to start; configure passes a run's counts", async (t) => {
  const task = createCbowTask({ vocabSize: 11, embeddingSize: 4 });
  t.throws(() => task.sampler({ rng: new Rng(1) }), { instanceOf: OptionError, message: /counts.*whole-corpus/ });
  const tokenizer = await WordVocab.train(['a b c'], { maxSize: 11, minCount: 1 });
  const counts = new Float64Array(tokenizer.vocabSize).fill(1);
  const configured = skipgram.configure({ itemShape: [8], tokenizer, tokenCounts: counts });
  t.true(configured.needsTokenCounts);
  const samples = await lastValueFrom(
    from(skewedSentences(2, 1).map((s) => ({ ...s, ids: s.ids.map((id) => id % tokenizer.vocabSize) }))).pipe(
      configured.sampler({ rng: new Rng(2) }),
      toArray(),
    ),
  );
  t.true(samples.length > 0);
  t.throws(() => createSkipgramTask({ vocabSize: 3, counts: [0, 0, 0] }), {
    instanceOf: OptionError,
    message: /counts/,
  });
});

test('options are checked when a task is made', (t) => {
  t.throws(() => createSkipgramTask({ window: 0 }), { instanceOf: OptionError, message: /window/ });
  t.throws(() => createCbowTask({ subsample: 2 }), { instanceOf: OptionError, message: /subsample/ });
  t.throws(() => createCbowTask({ vocabSize: 10, counts: [1, 2] }), { instanceOf: OptionError, message: /counts/ });
});

/**
 * The rank-accuracy bar of word2vec on samples: chance (1 / (1 + K)), or the context-free strategy that picks the
 * candidate of highest corpus count (ties to the positive), whichever is higher: positives follow the subsampled
 * unigram distribution and negatives unigram^0.75, so frequency alone could beat chance.
 */
function rankBaseline(samples: Sample[], input: number, counts: ArrayLike<number>): number {
  let right = 0;
  for (const s of samples) {
    const targets = s.inputs[input]!;
    if (targets.subarray(1).every((id) => counts[id]! <= counts[targets[0]!]!)) right++;
  }
  return Math.max(1 / samples[0]!.inputs[input]!.length, right / samples.length);
}

/** Trains a word2vec task on the procedural corpus (or its tokens permuted: the broken control), scores it held out. */
async function trainAndScore(make: typeof createSkipgramTask, broken: boolean) {
  const items = broken ? permuteTokens(sentences, 7) : sentences;
  // Permuting keeps every count: the control differs in co-occurrence alone.
  const counts = countTokens(items, vocabSize);
  const task = make({ vocabSize, embeddingSize: 16, window: 3, negatives: 4, subsample: 1e-2, counts });
  const encoder = buildTextEncoder({ vocabSize, maxLength: 8, embeddingSize: 16, hiddenSize: 8, seed: 1 });
  const losses: number[] = [];
  const result = await train({
    encoder,
    itemShape: [8],
    tasks: [{ task, samples: (_e, _v, rng) => from(items).pipe(task.sampler({ rng })) }],
    steps: 300,
    batchSize: 64,
    learningRate: 1e-2,
    seed: 5,
    onStep: (m) => losses.push(m.loss),
  });
  const { accuracy, batches } = await heldOutMetric(task, encoder, result.parts[task.name]!, heldOut, [8], 64);
  const baseline = rankBaseline(batches.flat(), task.name === 'skipgram' ? 1 : 2, counts);
  const shared = ['ship', 'bread', 'horse', 'star'].map(
    (w) => nearestWords(encoder, lookup, w, 5).filter((n) => topicOf(n.word) === topicOf(w)).length,
  );
  Object.values(result.heads).forEach((h) => h.dispose());
  encoder.dispose();
  return { accuracy, baseline, shared, first: mean(losses.slice(0, 20)), last: mean(losses.slice(-30)) };
}

for (const make of [createSkipgramTask, createCbowTask]) {
  test.serial(
    `${make === createSkipgramTask ? 'skip-gram' : 'CBOW'} learns: held-out rank accuracy beats its baseline by 0.15, topic words are neighbours; permuted tokens do not`,
    async (t) => {
      const before = tf.memory().numTensors;
      const margin = 0.15;
      const real = await trainAndScore(make, false);
      const control = await trainAndScore(make, true);
      t.log(
        `loss ${real.first.toFixed(3)} -> ${real.last.toFixed(3)}; held-out rank accuracy ${real.accuracy.toFixed(3)} vs baseline ${real.baseline.toFixed(3)} (margin ${margin}); control ${control.accuracy.toFixed(3)} vs ${control.baseline.toFixed(3)}`,
      );
      t.log(`same-topic words among 5 nearest: ${real.shared.join(', ')} (control ${control.shared.join(', ')})`);
      t.true(real.last < real.first * 0.8);
      t.true(real.accuracy > real.baseline + margin);
      t.true(mean(real.shared) >= 3);
      t.false(control.accuracy > control.baseline + margin, 'the broken control must fail');
      t.is(tf.memory().numTensors, before);
    },
  );
}
