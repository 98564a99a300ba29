import test from 'ava';
import { longSerial } from '../../_long.ts';
import * as tf from '@tensorflow/tfjs';
import { from, lastValueFrom, toArray } from 'rxjs';
import { selectBackend } from '../../../models/backend.ts';
import { OptionError } from '../../../core/errors.ts';
import { Rng } from '../../../core/rng.ts';
import {
  createTextCpcTask,
  tallyCpcTargets,
  textCpcAccuracy,
  textCpcFrequencyBaseline,
  textInfoNceLoss,
} from '../../../tasks/text/textCpc.ts';
import { learn } from '../_learn.ts';
import { heldOutMetric, permuteTokens } from './_heldOut.ts';
import { defaultVocabulary } from '../../../text/tokenizedSentence.ts';
import { buildTextEncoder } from '../../../models/textEncoder.ts';
import { WORDS, proceduralSentences } from './_corpus.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));
const vocabulary = defaultVocabulary(WORDS.length);
const sentences = proceduralSentences(300, 5);
const heldOut = proceduralSentences(100, 55);

test('the InfoNCE loss equals a naive loop that skips other occurrences of the target token', (t) => {
  // batch 2, L 4, K 2 -> T 2, N 4. Sequence 0: tokens 7 8 9 (then pad); sequence 1: 5 6 8 9.
  const mask = [
    [1, 1, 1, 0],
    [1, 1, 1, 1],
  ];
  const ids = [
    [7, 8, 9, 0],
    [5, 6, 8, 9],
  ];
  const rng = new Rng(1);
  const scores = [0, 1].map(() => [0, 1, 2, 3].map(() => [0, 1, 2, 3].map(() => rng.normal())));
  let [sum, weight, correct] = [0, 0, 0];
  for (let k = 1; k <= 2; k++) {
    const target = (n: number) => ids[Math.floor(n / 2)]![(n % 2) + k]!;
    for (let n = 0; n < 4; n++) {
      const w = mask[Math.floor(n / 2)]![(n % 2) + k]!;
      const columns = [0, 1, 2, 3].filter((m) => m === n || target(m) !== target(n));
      const row = scores[k - 1]![n]!;
      const lse = Math.log(columns.reduce((s, m) => s + Math.exp(row[m]!), 0));
      sum += w * (lse - row[n]!);
      weight += w;
      correct += w * (columns.every((m) => row[m]! <= row[n]!) ? 1 : 0);
    }
  }
  const labels = tf.tensor3d([
    [mask[0]!, ids[0]!],
    [mask[1]!, ids[1]!],
  ]);
  const s = tf.tensor3d(scores);
  const loss = textInfoNceLoss(labels, s).dataSync()[0]!;
  const accuracy = textCpcAccuracy(labels, s).dataSync()[0]!;
  tf.dispose([labels, s]);
  t.true(Math.abs(loss - sum / weight) < 1e-5, `${loss} vs ${sum / weight}`);
  t.true(Math.abs(accuracy - correct / weight) < 1e-6);
});

test('windows join the sentences of a document and never cross documents', async (t) => {
  // steps 1: a document's remainder needs 3 tokens to be kept.
  const task = createTextCpcTask({ vocabulary, maxLength: 12, steps: 1 });
  const docs = [
    { ids: Int32Array.from([5, 6, 7, 8, 9]), document: 0 },
    { ids: Int32Array.from([10, 11, 12, 13, 14, 15, 16, 17, 18]), document: 0 },
    { ids: Int32Array.from([20, 21, 22]), document: 1 },
    { ids: Int32Array.from([30]), document: 2 },
  ];
  const samples = await lastValueFrom(from(docs).pipe(task.sampler({ rng: new Rng(1) }), toArray()));
  t.deepEqual(
    samples.map((s) => [...s.inputs[0]!]),
    [
      [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
      [20, 21, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ],
  );
  t.deepEqual([...samples[1]!.label.subarray(0, 12)], [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
});

test('options are checked when the task is made', (t) => {
  t.throws(() => createTextCpcTask({ maxLength: 4, steps: 3 }), { instanceOf: OptionError, message: /steps/ });
});

test('the baseline answers the most frequent token present at each step of each batch', (t) => {
  // L 4, K 1 -> T 3: the targets of a window are its tokens 1..3 (weights from the mask).
  const window = (ids: number[], mask: number[]) => Float32Array.from([...mask, ...ids]);
  // Over the three batches token 7 is the most frequent target (4 of 10 real ones), then 8 (3). Batch 1 holds 7:
  // the strategy is right on its two 7s (padded targets have weight 0). Batch 2 holds no 7: it answers 8, right on
  // all three. Batch 3: two 7s.
  const batch1 = [
    window([5, 7, 7, 6], [1, 1, 1, 1]),
    window([5, 9, 0, 0], [1, 1, 0, 0]),
    window([5, 6, 0, 0], [1, 1, 0, 0]),
  ];
  const batch2 = [window([5, 8, 8, 8], [1, 1, 1, 1])];
  const baseline = textCpcFrequencyBaseline([batch1, batch2, [window([5, 7, 7, 0], [1, 1, 1, 0])]], 4, 1);
  t.is(baseline.id, 7);
  t.is(baseline.predictions, 10);
  t.is(baseline.accuracy, (2 + 3 + 2) / 10);
  // The tally counts the share of the most frequent target alone: 4 of 10.
  const tally = tallyCpcTargets(4, 1);
  [...batch1, ...batch2, window([5, 7, 7, 0], [1, 1, 1, 0])].forEach((label) => tally.add({ inputs: [], label }));
  t.deepEqual(tally.summary(), { predictions: 10, mostFrequentId: 7, baseline: 0.4 });
});

/** Trains text CPC on a procedural corpus (or its tokens permuted, the broken control) and scores it on another. */
async function trainAndScore(broken: boolean): Promise<{ accuracy: number; baseline: number; token: string }> {
  const task = createTextCpcTask({ vocabulary, maxLength: 12, steps: 2, embeddingSize: 16 });
  const encoder = buildTextEncoder({
    vocabSize: vocabulary.vocabSize,
    maxLength: 12,
    embeddingSize: 16,
    hiddenSize: 24,
    seed: 3,
  });
  const { result } = await learn(task, broken ? permuteTokens(sentences, 7) : sentences, 0, {
    encoder,
    itemShape: [12],
    steps: 100,
    batchSize: 16,
    learningRate: 1e-2,
    seed: 3,
  });
  const { accuracy, batches } = await heldOutMetric(task, encoder, result.parts['text-cpc']!, heldOut, [12], 16);
  const baseline = textCpcFrequencyBaseline(
    batches.map((b) => b.map((s) => s.label)),
    12,
    2,
  );
  Object.values(result.heads).forEach((h) => h.dispose());
  encoder.dispose();
  return { accuracy, baseline: baseline.accuracy, token: WORDS[baseline.id]! };
}

longSerial(
  'text CPC learns: held-out accuracy beats the most-frequent-token baseline by 0.1; permuted tokens do not',
  async (t) => {
    const before = tf.memory().numTensors;
    const margin = 0.1;
    const real = await trainAndScore(false);
    // Broken control: the same run on the training corpus with its tokens permuted (frequencies kept, order gone).
    const control = await trainAndScore(true);
    // Chance would be 1 in the ~40 distinct tokens a batch holds; the baseline ("the", ~0.18) is the bar that counts.
    t.log(
      `held-out future-token accuracy ${real.accuracy.toFixed(3)} vs always "${real.token}" ${real.baseline.toFixed(3)} (margin ${margin}); control ${control.accuracy.toFixed(3)}`,
    );
    t.true(real.accuracy > real.baseline + margin);
    t.false(control.accuracy > control.baseline + margin, 'the broken control must fail');
    t.is(tf.memory().numTensors, before);
  },
);
