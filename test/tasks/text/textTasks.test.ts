import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { from } from 'rxjs';
import { selectBackend } from '../../../models/backend.ts';
import { train } from '../../../training/trainer.ts';
import { TASKS, parseTaskList } from '../../../tasks/registry.ts';
import { createCbowTask } from '../../../tasks/text/cbow.ts';
import { createMlmTask } from '../../../tasks/text/maskedLm.ts';
import { createNspTask } from '../../../tasks/text/nextSentence.ts';
import { createTextCpcTask } from '../../../tasks/text/textCpc.ts';
import { countTokens } from '../../../tasks/text/word2vec.ts';
import { defaultVocabulary } from '../../../text/tokenizedSentence.ts';
import { buildTextEncoder, encodeText, pooledTextEncoder } from '../../../models/textEncoder.ts';
import { WORDS, proceduralSentences } from './_corpus.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));
const vocabulary = defaultVocabulary(WORDS.length);
const sentences = proceduralSentences(200, 6);

test('the text and dialogue tasks are in the registry under their command-line names', (t) => {
  t.deepEqual(
    parseTaskList('skipgram,cbow,mlm:0.5,nsp,text-cpc,dialogue-order').map((c) => c.name),
    ['skipgram', 'cbow', 'mlm', 'nsp', 'text-cpc', 'dialogue-order'],
  );
  for (const name of ['skipgram', 'cbow', 'mlm', 'nsp', 'text-cpc', 'dialogue-order'] as const)
    t.is(TASKS[name].name, name);
});

test('the encoder maps ids to pooled [batch, hidden] and per-token [batch, length, 2 * hidden] features', (t) => {
  const encoder = buildTextEncoder({ vocabSize: 50, maxLength: 7, embeddingSize: 8, hiddenSize: 6, seed: 1 });
  const pooled = pooledTextEncoder(encoder);
  tf.tidy(() => {
    const ids = tf.tensor2d([
      [2, 10, 11, 3, 0, 0, 0],
      [2, 12, 3, 0, 0, 0, 0],
    ]);
    const features = encodeText(encoder, ids, false);
    t.deepEqual(features.pooled.shape, [2, 6]);
    t.deepEqual(features.sequence.shape, [2, 7, 12]);
    t.deepEqual((pooled.predict(ids) as tf.Tensor).shape, [2, 6]);
    // The forward half is causal: changing the last token leaves earlier forward features unchanged.
    const changed = encodeText(
      encoder,
      tf.tensor2d([
        [2, 10, 11, 3, 0, 0, 9],
        [2, 12, 3, 0, 0, 0, 0],
      ]),
      false,
    );
    const head = (s: tf.Tensor) => tf.slice(s, [0, 0, 0], [1, 6, 6]);
    t.true(tf.max(tf.abs(tf.sub(head(features.sequence), head(changed.sequence)))).dataSync()[0]! < 1e-6);
  });
  encoder.dispose();
});

test.serial('tf.memory().numTensors stays flat over 30 steps of four text tasks on one encoder', async (t) => {
  const before = tf.memory().numTensors;
  const encoder = buildTextEncoder({
    vocabSize: vocabulary.vocabSize,
    maxLength: 10,
    embeddingSize: 8,
    hiddenSize: 8,
    seed: 1,
  });
  const tasks = [
    createMlmTask({ vocabulary, maxLength: 10 }),
    createNspTask({ vocabulary, maxLength: 10 }),
    createTextCpcTask({ vocabulary, maxLength: 10, steps: 2, embeddingSize: 8 }),
    createCbowTask({
      vocabSize: vocabulary.vocabSize,
      embeddingSize: 8,
      window: 2,
      negatives: 3,
      counts: countTokens(sentences, vocabulary.vocabSize),
    }),
  ];
  const counts: number[] = [];
  const result = await train({
    encoder,
    itemShape: [10],
    tasks: tasks.map((task) => ({ task, samples: (_e, _v, rng) => from(sentences).pipe(task.sampler({ rng })) })),
    steps: 32,
    batchSize: 8,
    seed: 1,
    onStep: () => counts.push(tf.memory().numTensors),
  });
  t.is(result.steps, 32);
  // After two burn-in steps (Adam makes its slots on the first) the count must not move.
  t.is(new Set(counts.slice(2)).size, 1, `tensor counts over steps: ${[...new Set(counts)].join(', ')}`);
  Object.values(result.heads).forEach((h) => h.dispose());
  encoder.dispose();
  t.is(tf.memory().numTensors, before);
});
