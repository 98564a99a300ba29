import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { from, lastValueFrom, toArray } from 'rxjs';
import { selectBackend } from '../../../models/backend.ts';
import { OptionError } from '../../../core/errors.ts';
import { Rng } from '../../../core/rng.ts';
import { train } from '../../../training/trainer.ts';
import { createTextCpcTask, textCpcAccuracy, textInfoNceLoss } from '../../../tasks/text/textCpc.ts';
import { defaultVocabulary } from '../../../text/tokenizedSentence.ts';
import { buildTextEncoder } from '../../../models/textEncoder.ts';
import { WORDS, mean, proceduralSentences } from './_corpus.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));
const vocabulary = defaultVocabulary(WORDS.length);
const sentences = proceduralSentences(300, 5);

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

test.serial('text CPC learns: InfoNCE falls and future tokens are picked far above chance', async (t) => {
  const task = createTextCpcTask({ vocabulary, maxLength: 12, steps: 2, embeddingSize: 16 });
  const before = tf.memory().numTensors;
  const encoder = buildTextEncoder({
    vocabSize: vocabulary.vocabSize,
    maxLength: 12,
    embeddingSize: 16,
    hiddenSize: 24,
    seed: 3,
  });
  const losses: number[] = [];
  const accuracies: number[] = [];
  const result = await train({
    encoder,
    itemShape: [12],
    tasks: [{ task, samples: (_e, _v, rng) => from(sentences).pipe(task.sampler({ rng })) }],
    steps: 100,
    batchSize: 16,
    learningRate: 1e-2,
    seed: 3,
    onStep: (m) => (losses.push(m.loss), accuracies.push(m.tasks['text-cpc']!.accuracy)),
  });
  Object.values(result.heads).forEach((h) => h.dispose());
  encoder.dispose();
  const [first, last, accuracy] = [mean(losses.slice(0, 10)), mean(losses.slice(-30)), mean(accuracies.slice(-30))];
  // Chance: one in the ~40 distinct tokens of the 44-word vocabulary that a batch holds.
  t.log(`loss ${first.toFixed(3)} -> ${last.toFixed(3)}, accuracy ${accuracy.toFixed(3)} (chance ~0.025)`);
  t.true(last < first * 0.8);
  t.true(accuracy > 0.2);
  t.is(tf.memory().numTensors, before);
});
