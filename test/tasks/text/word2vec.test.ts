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
  countTokens,
  negativeSamplingLoss,
  nearestWords,
  positiveRankAccuracy,
  unigramTable,
} from '../../../tasks/text/word2vec.ts';
import { buildTextEncoder } from '../../../models/textEncoder.ts';
import { WORDS, lookup, mean, proceduralSentences, topicOf } from './_corpus.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));
const sentences = proceduralSentences(300, 1);
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

test('the unigram table gives each id a share proportional to count^0.75', (t) => {
  const table = unigramTable([0, 16, 1, 0], 10000);
  const share = table.filter((id) => id === 1).length / table.length;
  t.true(Math.abs(share - 8 / 9) < 0.01, `share of id 1: ${share}`);
  t.false(table.includes(0));
  t.false(table.includes(3));
});

test('the skip-gram sampler pairs words within the window and labels the positive first', async (t) => {
  const task = createSkipgramTask({ vocabSize, embeddingSize: 8, window: 2, negatives: 3, subsample: 0 });
  const samples = await lastValueFrom(from(sentences.slice(0, 2)).pipe(task.sampler({ rng: new Rng(2) }), toArray()));
  t.true(samples.length > 0);
  for (const s of samples) {
    t.deepEqual([...s.label], [1, 0, 0, 0]);
    t.is(s.inputs[0]!.length, 1);
    t.is(s.inputs[1]!.length, 4);
  }
  // Same seed, same samples: samplers are reproducible.
  const again = await lastValueFrom(from(sentences.slice(0, 2)).pipe(task.sampler({ rng: new Rng(2) }), toArray()));
  t.deepEqual(
    again.map((s) => [...s.inputs[1]!]),
    samples.map((s) => [...s.inputs[1]!]),
  );
});

test('subsampling drops frequent words more often than rare ones', async (t) => {
  const counts = countTokens(sentences, vocabSize);
  const task = createSkipgramTask({ vocabSize, embeddingSize: 8, window: 1, negatives: 1, subsample: 1e-2, counts });
  const samples = await lastValueFrom(from(sentences).pipe(task.sampler({ rng: new Rng(3) }), toArray()));
  const centres = new Map<number, number>();
  for (const s of samples) centres.set(s.inputs[0]![0]!, (centres.get(s.inputs[0]![0]!) ?? 0) + 1);
  const the = lookup.tokenToId('the')!;
  const ship = lookup.tokenToId('ship')!;
  // Kept fraction of occurrences (each kept centre emits about the same number of pairs).
  t.true(
    centres.get(the)! / counts[the]! < 0.6 * (centres.get(ship)! / counts[ship]!),
    `the ${centres.get(the)}/${counts[the]}, ship ${centres.get(ship)}/${counts[ship]}`,
  );
});

test('options are checked when a task is made', (t) => {
  t.throws(() => createSkipgramTask({ window: 0 }), { instanceOf: OptionError, message: /window/ });
  t.throws(() => createCbowTask({ subsample: 2 }), { instanceOf: OptionError, message: /subsample/ });
  t.throws(() => createCbowTask({ vocabSize: 10, counts: [1, 2] }), { instanceOf: OptionError, message: /counts/ });
});

for (const make of [createSkipgramTask, createCbowTask]) {
  test.serial(
    `${make === createSkipgramTask ? 'skip-gram' : 'CBOW'} learns: loss falls, the positive outranks negatives, topic words are neighbours`,
    async (t) => {
      const counts = countTokens(sentences, vocabSize);
      const task = make({ vocabSize, embeddingSize: 16, window: 3, negatives: 4, subsample: 1e-2, counts });
      const before = tf.memory().numTensors;
      const encoder = buildTextEncoder({ vocabSize, maxLength: 8, embeddingSize: 16, hiddenSize: 8, seed: 1 });
      const losses: number[] = [];
      const accuracies: number[] = [];
      const result = await train({
        encoder,
        itemShape: [8],
        tasks: [{ task, samples: (_e, _v, rng) => from(sentences).pipe(task.sampler({ rng })) }],
        steps: 300,
        batchSize: 64,
        learningRate: 1e-2,
        seed: 5,
        onStep: (m) => (losses.push(m.loss), accuracies.push(m.tasks[task.name]!.accuracy)),
      });
      Object.values(result.heads).forEach((h) => h.dispose());
      const [first, last] = [mean(losses.slice(0, 20)), mean(losses.slice(-30))];
      t.true(last < first * 0.8, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
      t.log(`loss ${first.toFixed(3)} -> ${last.toFixed(3)}, rank accuracy ${mean(accuracies.slice(-30)).toFixed(3)}`);
      t.true(mean(accuracies.slice(-30)) > 0.4, `rank accuracy ${mean(accuracies.slice(-30)).toFixed(3)} (chance 0.2)`);
      const shared = ['ship', 'bread', 'horse', 'star'].map(
        (w) => nearestWords(encoder, lookup, w, 5).filter((n) => topicOf(n.word) === topicOf(w)).length,
      );
      t.log(`same-topic words among 5 nearest: ${shared.join(', ')}`);
      t.true(mean(shared) >= 3, `same-topic words among 5 nearest: ${shared.join(', ')}`);
      encoder.dispose();
      t.is(tf.memory().numTensors, before);
    },
  );
}
