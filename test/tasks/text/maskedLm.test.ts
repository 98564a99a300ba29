import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { from, lastValueFrom, toArray } from 'rxjs';
import { selectBackend } from '../../../models/backend.ts';
import { OptionError } from '../../../core/errors.ts';
import { Rng } from '../../../core/rng.ts';
import { createMlmTask, maskedLmAccuracy, maskedLmLoss } from '../../../tasks/text/maskedLm.ts';
import { defaultVocabulary } from '../../../text/tokenizedSentence.ts';
import { buildTextEncoder } from '../../../models/textEncoder.ts';
import { learn } from '../_learn.ts';
import { WORDS, mean, proceduralSentences } from './_corpus.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));
const vocabulary = defaultVocabulary(WORDS.length);
const sentences = proceduralSentences(400, 2);

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

test.serial('masked LM learns: loss falls and masked accuracy beats the unigram baseline', async (t) => {
  const task = createMlmTask({ vocabulary, maxLength: 10 });
  // Unigram baseline: always guess the token most often chosen for prediction.
  const probe = await lastValueFrom(from(sentences).pipe(task.sampler({ rng: new Rng(9) }), toArray()));
  const counts = new Map<number, number>();
  let n = 0;
  for (const s of probe)
    for (let k = 0; k < 2; k++)
      if (s.label[2 + k]) {
        counts.set(s.label[k]!, (counts.get(s.label[k]!) ?? 0) + 1);
        n++;
      }
  const baseline = Math.max(...counts.values()) / n;

  const before = tf.memory().numTensors;
  const encoder = buildTextEncoder({
    vocabSize: vocabulary.vocabSize,
    maxLength: 10,
    embeddingSize: 16,
    hiddenSize: 24,
    seed: 1,
  });
  const { losses, accuracies, result } = await learn(task, sentences, 0, {
    encoder,
    itemShape: [10],
    steps: 150,
    batchSize: 32,
    learningRate: 1e-2,
    seed: 3,
  });
  Object.values(result.heads).forEach((h) => h.dispose());
  encoder.dispose();
  const [first, last, accuracy] = [mean(losses.slice(0, 10)), mean(losses.slice(-30)), mean(accuracies.slice(-30))];
  t.log(
    `loss ${first.toFixed(3)} -> ${last.toFixed(3)}, masked accuracy ${accuracy.toFixed(3)}, unigram baseline ${baseline.toFixed(3)}`,
  );
  t.true(last < first * 0.6);
  t.true(accuracy > baseline + 0.15);
  t.is(tf.memory().numTensors, before);
});
