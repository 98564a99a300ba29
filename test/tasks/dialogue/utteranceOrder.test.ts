import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { from, lastValueFrom, toArray } from 'rxjs';
import { selectBackend } from '../../../models/backend.ts';
import { OptionError } from '../../../core/errors.ts';
import { Rng } from '../../../core/rng.ts';
import { train } from '../../../training/trainer.ts';
import { createDialogueOrderTask, disorder, scoreDialogue } from '../../../tasks/dialogue/utteranceOrder.ts';
import type { Dialogue } from '../../../text/dialogue.ts';
import { buildTextEncoder } from '../../../models/textEncoder.ts';
import { WordVocab } from '../../../text/tokenizers/WordVocab.ts';

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
const heldOut = proceduralDialogues(60, 2);
const tokenizerPromise = WordVocab.train(dialogues.flatMap((d) => d.turns));

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

test.serial('dialogue order learns, and scoreDialogue ranks original dialogues above shuffled ones', async (t) => {
  const tokenizer = await tokenizerPromise;
  const task = createDialogueOrderTask({ tokenizer, maxLength: 10, turns: 3 });
  const before = tf.memory().numTensors;
  const encoder = buildTextEncoder({
    vocabSize: tokenizer.vocabSize,
    maxLength: 10,
    embeddingSize: 16,
    hiddenSize: 16,
    seed: 4,
  });
  const losses: number[] = [];
  const accuracies: number[] = [];
  const result = await train({
    encoder,
    itemShape: [10],
    tasks: [{ task, samples: (_e, _v, rng) => from(dialogues).pipe(task.sampler({ rng })) }],
    steps: 100,
    batchSize: 16,
    learningRate: 1e-2,
    seed: 3,
    onStep: (m) => (losses.push(m.loss), accuracies.push(m.tasks['dialogue-order']!.accuracy)),
  });
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const [first, last, accuracy] = [mean(losses.slice(0, 10)), mean(losses.slice(-30)), mean(accuracies.slice(-30))];

  const scorer = { encoder, head: result.heads['dialogue-order']!, tokenizer, maxLength: 10, turns: 3 };
  const rng = new Rng(7);
  const longEnough = heldOut.filter((d) => d.turns.length >= 3);
  const original = longEnough.map((d) => scoreDialogue(scorer, d).score ?? Number.NaN);
  const shuffled = longEnough.map((d) => {
    let turns = [...d.turns];
    while (turns.every((x, i) => x === d.turns[i])) turns = rng.shuffle(turns);
    return scoreDialogue(scorer, { ...d, turns }).score ?? Number.NaN;
  });
  // AUC: the chance that a random original outscores a random shuffled dialogue.
  let wins = 0;
  for (const o of original) for (const s of shuffled) wins += o > s ? 1 : o === s ? 0.5 : 0;
  const auc = wins / (original.length * shuffled.length);
  const perTurn = scoreDialogue(scorer, longEnough[0]!);
  t.is(perTurn.turns.length, longEnough[0]!.turns.length);
  t.true(perTurn.turns.every((p) => p !== null && p >= 0 && p <= 1));
  Object.values(result.heads).forEach((h) => h.dispose());
  encoder.dispose();
  t.log(
    `loss ${first.toFixed(3)} -> ${last.toFixed(3)}, accuracy ${accuracy.toFixed(3)}, original-vs-shuffled AUC ${auc.toFixed(3)}`,
  );
  t.true(last < first * 0.8);
  t.true(accuracy > 0.7);
  t.true(auc > 0.8);
  t.is(tf.memory().numTensors, before);
});
