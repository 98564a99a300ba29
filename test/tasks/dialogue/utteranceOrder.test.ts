import test from 'ava';
import { longSerial } from '../../_long.ts';
import * as tf from '@tensorflow/tfjs';
import { from, lastValueFrom, toArray } from 'rxjs';
import { selectBackend } from '../../../models/backend.ts';
import { OptionError } from '../../../core/errors.ts';
import { Rng } from '../../../core/rng.ts';
import {
  createDialogueOrderTask,
  disorder,
  scoreDialogue,
  scoringOrders,
} from '../../../tasks/dialogue/utteranceOrder.ts';
import type { Dialogue } from '../../../text/dialogue.ts';
import { buildTextEncoder } from '../../../models/textEncoder.ts';
import { WordVocab } from '../../../text/tokenizers/WordVocab.ts';
import { stagedDialogues, trainAndMeasure } from './_dialogues.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

/** Dialogues that walk through fixed stages (greeting, question, answer, why, reason, goodbye): order is learnable. */
function proceduralDialogues(count: number, seed: number): Dialogue[] {
  const rng = new Rng(seed);
  const things = ['tea', 'music', 'football', 'books', 'rain', 'cats', 'coffee', 'movies'];
  const stages: Array<(x: string) => string> = [
    () => ['hello there', 'hi , good morning', 'hey , nice to see you'][rng.int(3)]!,
    () => ['hi , how are you ?', 'good morning to you too', 'nice to see you too'][rng.int(3)]!,
    (x) => `do you like ${x} ?`,
    (x) => (rng.next() < 0.5 ? `yes , i like ${x} a lot` : `no , i do not like ${x}`),
    () => ['why is that ?', 'really ? why ?', 'how come ?'][rng.int(3)]!,
    (x) => `because ${x} makes me ${['happy', 'tired', 'calm'][rng.int(3)]}`,
    () => ['ok , bye then', 'see you later', 'goodbye , take care'][rng.int(3)]!,
  ];
  return Array.from({ length: count }, (_, i) => {
    const x = things[rng.int(things.length)]!;
    const start = rng.int(3);
    const end = start + 2 + rng.int(stages.length - start - 1);
    return { id: String(i + 1), turns: stages.slice(start, end).map((stage) => stage(x)), source: 'procedural' };
  });
}

const dialogues = proceduralDialogues(400, 1);
const tokenizerPromise = WordVocab.train(dialogues.flatMap((d) => d.turns));

test('scoring compares a window with every order of its turns: a head blind to order gives each window 1/3!', async (t) => {
  t.deepEqual(scoringOrders(3)[0], [0, 1, 2]);
  t.is(new Set(scoringOrders(3).map((o) => o.join())).size, 6);
  // Past 4! the identity and 23 distinct others, the same every time.
  const five = scoringOrders(5);
  t.is(new Set(five.map((o) => o.join())).size, 24);
  t.deepEqual(five[0], [0, 1, 2, 3, 4]);
  t.deepEqual(scoringOrders(5), five);

  const tokenizer = await tokenizerPromise;
  const encoder = buildTextEncoder({ vocabSize: tokenizer.vocabSize, maxLength: 10, hiddenSize: 8, seed: 1 });
  const { head } = createDialogueOrderTask({ tokenizer, maxLength: 10, turns: 3 }).build(encoder, new Rng(1));
  // Zero weights: the same logit for every order, so no order is preferred.
  const zeros = head.getWeights().map((w) => tf.zerosLike(w));
  head.setWeights(zeros);
  tf.dispose(zeros);
  const scorer = { encoder, head, tokenizer, variant: 'utterances' as const, maxLength: 10, turns: 3 };
  const scored = scoreDialogue(
    scorer,
    dialogues.find((d) => d.turns.length >= 5)!,
  );
  t.true(scored.score !== null && Math.abs(scored.score - 1 / 6) < 1e-5);
  t.true(scored.turns.every((p) => p !== null && Math.abs(p - 1 / 6) < 1e-5));
  head.dispose();
  encoder.dispose();
});

test('windows are consecutive turns; negatives are never in the original order', async (t) => {
  const tokenizer = await tokenizerPromise;
  const task = createDialogueOrderTask({ tokenizer, maxLength: 10, turns: 3 });
  const samples = await lastValueFrom(from(dialogues.slice(0, 50)).pipe(task.sampler({ rng: new Rng(3) }), toArray()));
  const expected = dialogues.slice(0, 50).reduce((n, d) => n + Math.max(1, d.turns.length - 2), 0);
  t.is(samples.length, expected);
  const negatives = samples.filter((s) => s.label[0] === 0).length;
  t.true(Math.abs(negatives / samples.length - 0.5) < 0.1, `negatives ${negatives}/${samples.length}`);
  for (let trial = 0; trial < 50; trial++) {
    const window = [1, 2, 3].map((k) => Float32Array.of(k));
    const shuffled = disorder(window, new Rng(trial), () => false)!;
    t.notDeepEqual(
      shuffled.map((x) => x[0]),
      [1, 2, 3],
    );
  }
  // A two-turn dialogue padded to three: the empty turn stays first.
  const padded = disorder([Float32Array.of(0), Float32Array.of(5), Float32Array.of(6)], new Rng(1), (x) => x[0] === 0)!;
  t.deepEqual(
    padded.map((x) => x[0]),
    [0, 6, 5],
  );
});

test('options are checked when the task is made, and sampling without a tokenizer names the fix', (t) => {
  t.throws(() => createDialogueOrderTask({ turns: 1 }), { instanceOf: OptionError, message: /turns/ });
  t.throws(() => createDialogueOrderTask().sampler({ rng: new Rng(1) }), {
    instanceOf: OptionError,
    message: /createDialogueOrderTask\(\{ tokenizer \}\)/,
  });
});

test('scoreDialogue gives each turn the geometric mean of its windows, and a dialogue shorter than a window null', async (t) => {
  const tokenizer = await tokenizerPromise;
  const encoder = buildTextEncoder({ vocabSize: tokenizer.vocabSize, maxLength: 10, hiddenSize: 8, seed: 1 });
  const { head } = createDialogueOrderTask({ tokenizer, maxLength: 10, turns: 3 }).build(encoder, new Rng(1));
  const scorer = { encoder, head, tokenizer, variant: 'utterances' as const, maxLength: 10, turns: 3 };
  const before = tf.memory().numTensors;
  const long = dialogues.find((d) => d.turns.length >= 5)!;
  const scored = scoreDialogue(scorer, long);
  t.is(scored.turns.length, long.turns.length);
  t.true(scored.turns.every((p) => p !== null && p >= 0 && p <= 1));
  // The first turn is in the first window only, the last in the last only.
  t.true(scored.score !== null && scored.turns[0] !== scored.score);
  t.like(scoreDialogue(scorer, { ...long, turns: long.turns.slice(0, 2) }), {
    score: null,
    reason: '2 turns: a window needs 3 consecutive turns',
  });
  t.is(tf.memory().numTensors, before);
  head.dispose();
  encoder.dispose();
});

longSerial(
  'the utterances variant learns on held-out dialogues; with shuffled labels the same run does not',
  async (t) => {
    const [train, test] = [stagedDialogues(300, 1), stagedDialogues(60, 2)];
    const before = tf.memory().numTensors;
    const learned = await trainAndMeasure('utterances', train, test, false, 120);
    const control = await trainAndMeasure('utterances', train, test, true, 120);
    t.log(
      `loss ${learned.firstLoss.toFixed(3)} -> ${learned.lastLoss.toFixed(3)}, held-out accuracy ${learned.accuracy.toFixed(3)} ` +
        `(majority baseline ${learned.baseline.toFixed(3)}), original vs shuffled AUC ${learned.auc.toFixed(3)}; ` +
        `shuffled labels: accuracy ${control.accuracy.toFixed(3)}, AUC ${control.auc.toFixed(3)}`,
    );
    // Margin 0.2 over the majority baseline, and an AUC over 0.8 (chance 0.5); the control must miss both.
    t.true(learned.lastLoss < learned.firstLoss * 0.8);
    t.true(learned.accuracy > learned.baseline + 0.2);
    t.true(learned.auc > 0.8);
    t.false(control.accuracy > control.baseline + 0.2);
    t.false(control.auc > 0.8);
    t.is(tf.memory().numTensors, before);
  },
);
