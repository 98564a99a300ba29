import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '../../models/backend.ts';
import { ModelIOError, OptionError } from '../../core/errors.ts';
import { saveModel } from '../../models/modelIO.ts';
import { pretrainText, type TextPretrainOptions } from '../../runs/pretrainText.ts';
import { loadDialogueScorer } from '../../runs/scoreDialogues.ts';
import { trainCorpusTokenizer } from '../../runs/corpusTokenizer.ts';
import { parseTaskList } from '../../tasks/registry.ts';
import { WordPiece } from '../../text/tokenizers/WordPiece.ts';
import { WordVocab } from '../../text/tokenizers/WordVocab.ts';
import { writeCorpus, writeDailyDialog } from '../cli/_textFixtures.ts';

let dir = '';
let base: Omit<TextPretrainOptions, 'steps'>;

test.before(async () => {
  await selectBackend({ backend: 'wasm', log: () => {} });
  dir = await mkdtemp(join(tmpdir(), 'tempo-pretrain-text-'));
  const corpus = await writeCorpus(dir, 'corpus.txt', 30);
  const daily = await writeDailyDialog(dir, 'dialogues.txt', 24);
  const tokenizer = await WordPiece.train([await readFile(corpus, 'utf8'), await readFile(daily, 'utf8')], {
    vocabSize: 100,
  });
  base = {
    text: [corpus],
    dialogues: [daily],
    tasks: parseTaskList('nsp,dialogue-order', ['nsp', 'dialogue-order']),
    tokenizer,
    taskConfig: { maxLength: 10, embeddingSize: 8 },
    hiddenSize: 8,
    batchSize: 4,
    learningRate: 1e-2,
    seed: 5,
    // Smaller than an epoch of samples, so the buffer's draws are part of what a resume must replay.
    shuffleBuffer: 16,
    progress: 'none',
  };
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

async function encoderWeights(options: TextPretrainOptions): Promise<Float32Array[]> {
  const result = await pretrainText(options);
  const weights = result.encoder.getWeights().map((w) => w.dataSync() as Float32Array);
  result.encoder.dispose();
  Object.values(result.heads).forEach((h) => h.dispose());
  return weights;
}

test.serial(
  'a resumed text run (through the shuffle buffer) ends with the same weights as an uninterrupted one',
  async (t) => {
    const whole = await encoderWeights({ ...base, steps: 8, outDir: join(dir, 'whole'), checkpointEvery: 4 });
    await encoderWeights({ ...base, steps: 4, outDir: join(dir, 'parts'), checkpointEvery: 4 });
    const resumed = await encoderWeights({
      ...base,
      steps: 8,
      outDir: join(dir, 'parts'),
      checkpointEvery: 4,
      resume: true,
    });
    t.is(resumed.length, whole.length);
    const maxDiff = Math.max(
      ...whole.map((w, i) => w.reduce((m, v, j) => Math.max(m, Math.abs(v - resumed[i]![j]!)), 0)),
    );
    t.true(maxDiff < 1e-5, `max weight difference ${maxDiff}`);
  },
);

test.serial(
  'a shuffle buffer below one sample, or a tokenizer kind beside a given tokenizer, is refused with the flag',
  async (t) => {
    const before = tf.memory().numTensors;
    await t.throwsAsync(pretrainText({ ...base, steps: 1, shuffleBuffer: 0 }), {
      instanceOf: OptionError,
      message: /--shuffle-buffer/,
    });
    await t.throwsAsync(pretrainText({ ...base, steps: 1, tokenizerModel: 'word' }), {
      instanceOf: OptionError,
      message: /--tokenizer-model.*from --tokenizer/,
    });
    t.is(tf.memory().numTensors, before);
  },
);

test.serial(
  'a dialogue-order head of another shape (an older version) is refused with the fix, before scoring',
  async (t) => {
    const out = join(dir, 'old-head');
    await encoderWeights({ ...base, steps: 1, outDir: out });
    const scorer = await loadDialogueScorer(out);
    t.is(scorer.head.inputs[0]!.shape.length, 3);
    scorer.encoder.dispose();
    scorer.head.dispose();
    const old = tf.sequential({
      layers: [tf.layers.gru({ inputShape: [3, 8], units: 8 }), tf.layers.dense({ units: 1 })],
    });
    await saveModel(old, join(out, 'heads', 'dialogue-order'));
    old.dispose();
    await t.throwsAsync(loadDialogueScorer(out), {
      instanceOf: ModelIOError,
      message: /retrain it with pretrain --dialogues/,
    });
  },
);

test('a tokenizer trained for dialogues alone is word-level, one with text WordPiece, unless told', async (t) => {
  const words = await trainCorpusTokenizer({ dialogues: base.dialogues, vocabSize: 60 });
  t.true(words instanceof WordVocab);
  t.true(words.vocabSize <= 60);
  t.true(
    (await trainCorpusTokenizer({ text: base.text, dialogues: base.dialogues, vocabSize: 60 })) instanceof WordPiece,
  );
  t.true(
    (await trainCorpusTokenizer({ dialogues: base.dialogues, vocabSize: 60, model: 'wordpiece' })) instanceof WordPiece,
  );
  await t.throwsAsync(trainCorpusTokenizer({ dialogues: base.dialogues, model: 'bpe' as never }), {
    instanceOf: OptionError,
    message: /--tokenizer-model/,
  });
});
