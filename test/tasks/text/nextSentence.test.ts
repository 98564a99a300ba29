import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { from, lastValueFrom, toArray } from 'rxjs';
import { selectBackend } from '../../../models/backend.ts';
import { OptionError } from '../../../core/errors.ts';
import { Rng } from '../../../core/rng.ts';
import { createNspTask } from '../../../tasks/text/nextSentence.ts';
import { defaultVocabulary } from '../../../text/tokenizedSentence.ts';
import { buildTextEncoder } from '../../../models/textEncoder.ts';
import { learn } from '../_learn.ts';
import { WORDS, mean, proceduralSentences } from './_corpus.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));
const vocabulary = defaultVocabulary(WORDS.length);
const sentences = proceduralSentences(600, 4);

test('pairs are half true next sentences and half sentences of other documents', async (t) => {
  const task = createNspTask({ vocabulary, maxLength: 10, poolSize: 50 });
  const samples = await lastValueFrom(from(sentences).pipe(task.sampler({ rng: new Rng(1) }), toArray()));
  const key = (ids: Float32Array) => ids.join(',');
  const next = new Map<string, Set<string>>();
  const documentOf = new Map<string, Set<number>>();
  sentences.forEach((s, i) => {
    const packed = (x: Int32Array) =>
      key(Float32Array.from([vocabulary.clsId, ...x, vocabulary.sepId, ...new Array(8 - x.length).fill(0)]));
    if (!documentOf.has(packed(s.ids))) documentOf.set(packed(s.ids), new Set());
    documentOf.get(packed(s.ids))!.add(s.document);
    const n = sentences[i + 1];
    if (n && n.document === s.document)
      (next.get(packed(s.ids)) ?? next.set(packed(s.ids), new Set()).get(packed(s.ids))!).add(packed(n.ids));
  });
  const positives = samples.filter((s) => s.label[0] === 1);
  t.true(
    Math.abs(positives.length / samples.length - 0.5) < 0.05,
    `positive fraction ${positives.length / samples.length}`,
  );
  for (const s of positives) t.true(next.get(key(s.inputs[0]!))!.has(key(s.inputs[1]!)));
  // A negative's second sentence occurs in some document other than the first sentence's.
  for (const s of samples.filter((x) => x.label[0] === 0)) {
    const docsA = documentOf.get(key(s.inputs[0]!))!;
    const docsB = documentOf.get(key(s.inputs[1]!))!;
    t.true([...docsB].some((d) => !docsA.has(d)) || docsA.size > 1);
  }
});

test('options are checked when the task is made', (t) => {
  t.throws(() => createNspTask({ positiveFraction: 1 }), { instanceOf: OptionError, message: /positiveFraction/ });
  t.throws(() => createNspTask({ poolSize: 0 }), { instanceOf: OptionError, message: /poolSize/ });
});

test.serial('next-sentence prediction learns: loss falls and accuracy ends well above chance', async (t) => {
  const task = createNspTask({ vocabulary, maxLength: 10 });
  const before = tf.memory().numTensors;
  const encoder = buildTextEncoder({
    vocabSize: vocabulary.vocabSize,
    maxLength: 10,
    embeddingSize: 16,
    hiddenSize: 16,
    seed: 2,
  });
  const { losses, accuracies, result } = await learn(task, sentences, 0, {
    encoder,
    itemShape: [10],
    steps: 120,
    batchSize: 32,
    learningRate: 1e-2,
    seed: 3,
  });
  Object.values(result.heads).forEach((h) => h.dispose());
  encoder.dispose();
  const [first, last, accuracy] = [mean(losses.slice(0, 10)), mean(losses.slice(-30)), mean(accuracies.slice(-30))];
  t.log(`loss ${first.toFixed(3)} -> ${last.toFixed(3)}, accuracy ${accuracy.toFixed(3)} (chance 0.5, ceiling ~0.875)`);
  t.true(last < first * 0.8);
  t.true(accuracy > 0.7);
  t.is(tf.memory().numTensors, before);
});
