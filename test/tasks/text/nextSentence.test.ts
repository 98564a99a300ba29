import test from 'ava';
import { longSerial } from '../../_long.ts';
import * as tf from '@tensorflow/tfjs';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { from, lastValueFrom, tap, toArray } from 'rxjs';
import { selectBackend } from '../../../models/backend.ts';
import { OptionError } from '../../../core/errors.ts';
import { Rng } from '../../../core/rng.ts';
import { EarlierSentences, createNspTask, tallyNspLabels } from '../../../tasks/text/nextSentence.ts';
import { defaultVocabulary, tokenizeSentences, type TokenizedSentence } from '../../../text/tokenizedSentence.ts';
import { readSentences } from '../../../text/sources.ts';
import { MAX_BLOCK_CHARS } from '../../../text/segment.ts';
import { WordVocab } from '../../../text/tokenizers/WordVocab.ts';
import { buildTextEncoder } from '../../../models/textEncoder.ts';
import { learn } from '../_learn.ts';
import { coinLabels, heldOutMetric, withBrokenSamples } from './_heldOut.ts';
import { WORDS, proceduralSentences } from './_corpus.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));
const vocabulary = defaultVocabulary(WORDS.length);

/** `documents` documents of `length` one-token sentences; sentence i (over the corpus) is token 5 + i. */
function numbered(documents: number, length: number): TokenizedSentence[] {
  return Array.from({ length: documents * length }, (_, i) => ({
    ids: Int32Array.of(5 + i),
    document: Math.floor(i / length),
  }));
}

test('positives are true next sentences; negatives are sentences of earlier documents; none in the first', async (t) => {
  const corpus = numbered(300, 6);
  const task = createNspTask({ maxLength: 4, poolSize: 50 });
  const samples = await lastValueFrom(from(corpus).pipe(task.sampler({ rng: new Rng(1) }), toArray()));
  const index = (packed: Float32Array) => packed[1]! - 5;
  const documentOf = (i: number) => corpus[i]!.document;
  let positives = 0;
  for (const s of samples) {
    const [a, b] = [index(s.inputs[0]!), index(s.inputs[1]!)];
    t.not(documentOf(a), 0, 'no pair of the first document');
    if (s.label[0] === 1) {
      positives++;
      t.is(b, a + 1);
      t.is(documentOf(b), documentOf(a));
    } else t.true(documentOf(b) < documentOf(a), `negative ${b} (document ${documentOf(b)}) for ${a}`);
  }
  t.is(samples.length, 299 * 5);
  t.true(Math.abs(positives / samples.length - 0.5) < 0.04, `positive fraction ${positives / samples.length}`);
});

test('labels stay balanced with long documents (the old 10-draw sampler gave 0.593 positives here)', async (t) => {
  // Five documents of 500 sentences: a pool of recent sentences is full of the current document.
  const samples = await lastValueFrom(
    from(numbered(5, 500)).pipe(createNspTask({ maxLength: 4 }).sampler({ rng: new Rng(1) }), toArray()),
  );
  const tally = tallyNspLabels();
  samples.forEach((s) => tally.add(s));
  const { positives, negatives } = tally.summary();
  t.is(positives! + negatives!, 4 * 499);
  const fraction = positives! / (positives! + negatives!);
  // 1996 pairs: the standard deviation of the fraction is 0.011.
  t.true(Math.abs(fraction - 0.5) < 0.035, `positive fraction ${fraction}`);
});

test('the pool of earlier sentences is a uniform sample of earlier documents, bounded in size', (t) => {
  // 10 documents of 100 sentences into a pool of 50, over 400 independent pools: each slot holds a sentence of
  // document d with probability 1/10.
  const documents = new Array<number>(10).fill(0);
  for (let run = 0; run < 400; run++) {
    const pool = new EarlierSentences(50, new Rng(run));
    t.is(pool.draw(), undefined);
    for (const s of numbered(10, 100)) {
      if (s.ids[0]! % 100 === 5 && s.document > 0) pool.endDocument();
      pool.offer(s);
      t.true(pool.size <= 50);
      // Draws never come from the document being read.
      const drawn = pool.draw();
      if (drawn) t.true(drawn.document < s.document);
    }
    pool.endDocument();
    for (let k = 0; k < 50; k++) documents[pool.draw()!.document]!++;
  }
  const expected = (400 * 50) / 10;
  const chi = documents.reduce((a, n) => a + (n - expected) ** 2 / expected, 0);
  t.true(chi < 27.9, `chi-square over documents ${chi.toFixed(1)} (df 9, p=0.001 at 27.9): ${documents.join(' ')}`);
});

test('a corpus without blank lines streams as documents of at most 64 KiB of lines, and NSP finds negatives', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-nsp-'));
  try {
    const rng = new Rng(3);
    const words = ['ship', 'bread', 'horse', 'star', 'the', 'a', 'sails', 'bakes', 'runs', 'glows'];
    // About 1 MB, one sentence a line, no blank line anywhere.
    const lines = Array.from(
      { length: 25000 },
      () =>
        Array.from({ length: 6 }, () => words[rng.int(words.length)])
          .join(' ')
          .replace(/^./, (c) => c.toUpperCase()) + '.',
    );
    const path = join(dir, 'flat.txt');
    await writeFile(path, lines.join('\n') + '\n');
    const tokenizer = await WordVocab.train(lines.slice(0, 100), { maxSize: 50, minCount: 1 });
    const chars = new Map<number, number>();
    const tally = tallyNspLabels();
    const task = createNspTask({ vocabulary: defaultVocabulary(tokenizer.vocabSize), maxLength: 10 });
    // One pass, sentence by sentence: nothing holds the corpus.
    await lastValueFrom(
      readSentences([path]).pipe(
        tap((s) => chars.set(s.document, (chars.get(s.document) ?? 0) + s.text.length)),
        tokenizeSentences(tokenizer),
        task.sampler({ rng: new Rng(1) }),
        tap((sample) => tally.add(sample)),
      ),
    );
    const sizes = [...chars.values()];
    t.true(sizes.length >= 10, `${sizes.length} documents`);
    // A block closes once its lines pass MAX_BLOCK_CHARS; joining them adds a space a line (~40 chars a line here).
    t.true(Math.max(...sizes) <= MAX_BLOCK_CHARS * 1.05, `largest document ${Math.max(...sizes)} chars`);
    const { positives, negatives } = tally.summary();
    t.log(
      `${sizes.length} documents of at most ${Math.max(...sizes)} chars; ${positives} positives, ${negatives} negatives`,
    );
    t.true(Math.abs(positives! / (positives! + negatives!) - 0.5) < 0.02);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('options are checked when the task is made', (t) => {
  t.throws(() => createNspTask({ positiveFraction: 1 }), { instanceOf: OptionError, message: /positiveFraction/ });
  t.throws(() => createNspTask({ poolSize: 0 }), { instanceOf: OptionError, message: /poolSize/ });
});

/** Trains NSP (or its broken control) on one procedural corpus and scores it on another. */
async function trainAndScore(broken: boolean): Promise<{ accuracy: number; baseline: number }> {
  const task = createNspTask({ vocabulary, maxLength: 10 });
  const trained = broken ? withBrokenSamples(task, coinLabels) : task;
  const encoder = buildTextEncoder({
    vocabSize: vocabulary.vocabSize,
    maxLength: 10,
    embeddingSize: 16,
    hiddenSize: 16,
    seed: 2,
  });
  const { result } = await learn(trained, proceduralSentences(600, 4), 0, {
    encoder,
    itemShape: [10],
    steps: 120,
    batchSize: 32,
    learningRate: 1e-2,
    // Some seeds leave this small siamese GRU at the ln 2 saddle for all 120 steps (the sampler before issue 9
    // too: 3 of 13 seeds); seed 1 leaves it.
    seed: 1,
  });
  const { accuracy, batches } = await heldOutMetric(
    task,
    encoder,
    result.parts.nsp!,
    proceduralSentences(150, 44),
    [10],
    32,
  );
  // The trivial baseline: always answering the more frequent label of the held-out pairs.
  const labels = batches.flat().map((s) => s.label[0]!);
  const share = labels.filter((l) => l === 1).length / labels.length;
  Object.values(result.heads).forEach((h) => h.dispose());
  encoder.dispose();
  return { accuracy, baseline: Math.max(share, 1 - share) };
}

longSerial(
  'next-sentence prediction learns: held-out accuracy beats the majority label by 0.15; shuffled labels do not',
  async (t) => {
    const before = tf.memory().numTensors;
    const margin = 0.15;
    const real = await trainAndScore(false);
    const control = await trainAndScore(true);
    t.log(
      `held-out accuracy ${real.accuracy.toFixed(3)} vs majority-label baseline ${real.baseline.toFixed(3)} (margin ${margin}); control with coin-flip labels ${control.accuracy.toFixed(3)}`,
    );
    t.true(real.accuracy > real.baseline + margin);
    t.false(control.accuracy > control.baseline + margin, 'the broken control must fail');
    t.is(tf.memory().numTensors, before);
  },
);
