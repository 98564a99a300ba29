import test from 'ava';
import { longSerial } from '../../_long.ts';
import * as tf from '@tensorflow/tfjs';
import { from, lastValueFrom, toArray } from 'rxjs';
import { selectBackend } from '../../../models/backend.ts';
import { OptionError } from '../../../core/errors.ts';
import { Rng } from '../../../core/rng.ts';
import {
  createMlmTask,
  maskedLmAccuracy,
  maskedLmLoss,
  mlmFrequencyBaseline,
  tallyMaskedTargets,
} from '../../../tasks/text/maskedLm.ts';
import { heldOutMetric, permuteTokens } from './_heldOut.ts';
import { defaultVocabulary } from '../../../text/tokenizedSentence.ts';
import { buildTextEncoder } from '../../../models/textEncoder.ts';
import { learn } from '../_learn.ts';
import { WORDS, proceduralSentences } from './_corpus.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));
const vocabulary = defaultVocabulary(WORDS.length);
const sentences = proceduralSentences(400, 2);
const heldOut = proceduralSentences(100, 22);

test('the masked-LM loss and accuracy equal a naive reference over weighted positions', (t) => {
  const logits = [
    [
      [1, 2, 0],
      [0, 0, 3],
    ],
    [
      [2, 0, 0],
      [1, 1, 1],
    ],
  ]; // [batch 2, P 2, vocab 3]
  const labels = [
    [
      [1, 2],
      [1, 1],
    ],
    [
      [2, 0],
      [1, 0],
    ],
  ]; // targets then weights
  const ce = (row: number[], target: number) => Math.log(row.reduce((s, x) => s + Math.exp(x), 0)) - row[target]!;
  const expected = (ce(logits[0]![0]!, 1) + ce(logits[0]![1]!, 2) + ce(logits[1]![0]!, 2)) / 3;
  const [loss, accuracy] = tf.tidy(() => [
    maskedLmLoss(tf.tensor3d(labels), tf.tensor3d(logits)).dataSync()[0]!,
    maskedLmAccuracy(tf.tensor3d(labels), tf.tensor3d(logits)).dataSync()[0]!,
  ]);
  t.true(Math.abs(loss - expected) < 1e-5, `${loss} vs ${expected}`);
  t.true(Math.abs(accuracy - 2 / 3) < 1e-6);
});

test('the sampler chooses 15% of tokens and masks 80%, replaces 10%, keeps 10% of them', async (t) => {
  const task = createMlmTask({ vocabulary, maxLength: 40, maxPredictions: 6 });
  const long = Array.from({ length: 2000 }, (_, i) => ({
    ids: Int32Array.from({ length: 38 }, (_, k) => 5 + ((i + k) % 30)),
    document: i,
  }));
  const samples = await lastValueFrom(from(long).pipe(task.sampler({ rng: new Rng(1) }), toArray()));
  let [masked, kept, replaced, total] = [0, 0, 0, 0];
  for (const s of samples) {
    const [ids, positions] = s.inputs as [Float32Array, Float32Array];
    t.is(ids[0], vocabulary.clsId);
    t.is(ids[39], vocabulary.sepId);
    for (let k = 0; k < 6; k++) {
      if (s.label[6 + k] === 0) continue;
      total++;
      const now = ids[positions[k]!]!;
      if (now === vocabulary.maskId) masked++;
      else if (now === s.label[k]) kept++;
      else replaced++;
    }
  }
  t.is(total, 2000 * 6); // round(0.15 * 38) = 6 per sequence
  t.true(Math.abs(masked / total - 0.8) < 0.02, `masked ${masked / total}`);
  // A random replacement can draw the same token (1 in 30 here), which counts as kept.
  t.true(Math.abs(kept / total - 0.1 - 0.1 / 30) < 0.015, `kept ${kept / total}`);
  t.true(Math.abs(replaced / total - 0.1 + 0.1 / 30) < 0.015, `replaced ${replaced / total}`);
});

test('options are checked when the task is made', (t) => {
  t.throws(() => createMlmTask({ maxLength: 2 }), { instanceOf: OptionError, message: /maxLength/ });
  t.throws(() => createMlmTask({ maskFraction: 0 }), { instanceOf: OptionError, message: /maskFraction/ });
  t.throws(() => createMlmTask({ vocabulary: { ...vocabulary, maskId: 999 } }), {
    instanceOf: OptionError,
    message: /maskId/,
  });
});

test('the baseline and the tally count the most frequent masked target, weights respected', (t) => {
  // P = 3: targets then weights. Token 7 is the target of 3 of the 5 real predictions; the padded 9s do not count.
  const labels = [
    Float32Array.of(7, 8, 9, 1, 1, 0),
    Float32Array.of(7, 7, 6, 1, 1, 1),
    Float32Array.of(9, 9, 9, 0, 0, 0),
  ];
  t.deepEqual(mlmFrequencyBaseline(labels, 3), { id: 7, accuracy: 3 / 5, predictions: 5 });
  const tally = tallyMaskedTargets(3);
  labels.forEach((label) => tally.add({ inputs: [], label }));
  t.deepEqual(tally.summary(), { predictions: 5, mostFrequentId: 7, baseline: 3 / 5 });
});

/** Trains MLM on a procedural corpus (or its tokens permuted, the broken control) and scores it on another. */
async function trainAndScore(broken: boolean): Promise<{ accuracy: number; baseline: number; token: string }> {
  const task = createMlmTask({ vocabulary, maxLength: 10 });
  const encoder = buildTextEncoder({
    vocabSize: vocabulary.vocabSize,
    maxLength: 10,
    embeddingSize: 16,
    hiddenSize: 24,
    seed: 1,
  });
  const { result } = await learn(task, broken ? permuteTokens(sentences, 7) : sentences, 0, {
    encoder,
    itemShape: [10],
    steps: 150,
    batchSize: 32,
    learningRate: 1e-2,
    seed: 3,
  });
  const { accuracy, batches } = await heldOutMetric(task, encoder, result.parts.mlm!, heldOut, [10], 32);
  const baseline = mlmFrequencyBaseline(
    batches.flat().map((s) => s.label),
    2,
  );
  Object.values(result.heads).forEach((h) => h.dispose());
  encoder.dispose();
  return { accuracy, baseline: baseline.accuracy, token: WORDS[baseline.id]! };
}

longSerial(
  'masked LM learns: held-out accuracy beats the most-frequent-token baseline by 0.15; permuted tokens do not',
  async (t) => {
    const before = tf.memory().numTensors;
    const margin = 0.15;
    const real = await trainAndScore(false);
    // Broken control: the same run on the training corpus with its tokens permuted (frequencies kept, context gone).
    const control = await trainAndScore(true);
    t.log(
      `held-out masked accuracy ${real.accuracy.toFixed(3)} vs always "${real.token}" ${real.baseline.toFixed(3)} (margin ${margin}); control ${control.accuracy.toFixed(3)}`,
    );
    t.true(real.accuracy > real.baseline + margin);
    t.false(control.accuracy > control.baseline + margin, 'the broken control must fail');
    t.is(tf.memory().numTensors, before);
  },
);
