// The learning test of both dialogue-order variants: staged synthetic dialogues, training, held-out figures and
// the broken control. Test helper, not a test.
import * as tf from '@tensorflow/tfjs';
import { from, lastValueFrom, mergeMap, pipe, toArray, type OperatorFunction } from 'rxjs';
import { Rng } from '../../../core/rng.ts';
import type { Sample } from '../../../pipeline/sample.ts';
import { train } from '../../../training/trainer.ts';
import { collate, disposeBatch } from '../../../pipeline/batchSamples.ts';
import { rocAuc } from '../../../evaluation/rocAuc.ts';
import {
  createDialogueOrderTask,
  scoreDialogue,
  type DialogueVariant,
} from '../../../tasks/dialogue/utteranceOrder.ts';
import type { PretextTask } from '../../../tasks/task.ts';
import type { Dialogue } from '../../../text/dialogue.ts';
import { buildTextEncoder } from '../../../models/textEncoder.ts';
import { WordVocab } from '../../../text/tokenizers/WordVocab.ts';

/**
 * Dialogues that walk through fixed stages (greeting, question, answer, why, reason, plans, goodbye), six to ten
 * turns from a random first stage: the order of their turns, and of their pairs, is learnable from their words.
 */
export function stagedDialogues(count: number, seed: number): Dialogue[] {
  const rng = new Rng(seed);
  const pick = (xs: string[]): string => xs[rng.int(xs.length)]!;
  const things = ['tea', 'music', 'football', 'books', 'rain', 'cats', 'coffee', 'movies'];
  const stages: Array<(x: string) => string> = [
    () => pick(['hello there', 'hi , good morning', 'hey , nice to see you']),
    () => pick(['hi , how are you ?', 'good morning to you too', 'nice to see you too']),
    () => pick(['fine thanks , and you ?', 'very well , you ?', 'not bad , and you ?']),
    () => pick(['great , thank you', 'i am fine', 'pretty good']),
    (x) => `do you like ${x} ?`,
    (x) => (rng.next() < 0.5 ? `yes , i like ${x} a lot` : `no , i do not like ${x}`),
    () => pick(['why is that ?', 'really ? why ?', 'how come ?']),
    (x) => `because ${x} makes me ${pick(['happy', 'tired', 'calm'])}`,
    () => pick(['what will you do tomorrow ?', 'any plans for the weekend ?', 'what next ?']),
    () => pick(['i will stay home', 'i will visit my sister', 'i will go to work']),
    () => pick(['ok , bye then', 'see you later', 'goodbye , take care']),
    () => pick(['bye', 'see you', 'take care too']),
  ];
  return Array.from({ length: count }, (_, i) => {
    const x = pick(things);
    const length = 6 + rng.int(5);
    const start = rng.int(stages.length - length + 1);
    return { id: String(i + 1), turns: stages.slice(start, start + length).map((s) => s(x)), source: 'staged' };
  });
}

/** The labels of a sample stream, shuffled among its samples: the broken control of the learning tests. */
export function shuffleLabels(rng: Rng): OperatorFunction<Sample, Sample> {
  return pipe(
    toArray(),
    mergeMap((all) => {
      const labels = rng.shuffle(all.map((s) => s.label));
      return all.map((s, i) => ({ ...s, label: labels[i]! }));
    }),
  );
}

/** What {@link trainAndMeasure} measured on the held-out dialogues. */
export interface Measured {
  /** Accuracy on the held-out samples of the task's own sampler, and the majority label's share of them. */
  accuracy: number;
  baseline: number;
  /** ROC AUC of scoreDialogue for the held-out dialogues against shuffled copies of them. */
  auc: number;
  /** Mean training loss over the first 10 and the last 20 steps. */
  firstLoss: number;
  lastLoss: number;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Trains `variant` on `dialogues` with a small text encoder (labels shuffled when `broken`: the same run in every
 * other respect), then measures it on `heldOut`. Frees every tensor it made.
 */
export async function trainAndMeasure(
  variant: DialogueVariant,
  dialogues: readonly Dialogue[],
  heldOut: readonly Dialogue[],
  broken: boolean,
  steps: number,
): Promise<Measured> {
  const tokenizer = await WordVocab.train([...dialogues, ...heldOut].flatMap((d) => d.turns));
  const task = createDialogueOrderTask({ variant, tokenizer, maxLength: 10, turns: 3 });
  const encoder = buildTextEncoder({
    vocabSize: tokenizer.vocabSize,
    maxLength: 10,
    embeddingSize: 16,
    hiddenSize: 16,
    seed: 4,
  });
  const losses: number[] = [];
  const result = await train({
    encoder,
    itemShape: [10],
    tasks: [
      {
        task: task as PretextTask<never>,
        samples: (_e, _v, rng) => {
          const sampled = from(dialogues).pipe(task.sampler({ rng }));
          return broken ? sampled.pipe(shuffleLabels(rng.fork())) : sampled;
        },
      },
    ],
    steps,
    batchSize: 16,
    learningRate: 1e-2,
    seed: 3,
    onStep: (m) => void losses.push(m.loss),
  });
  const head = result.heads['dialogue-order']!;
  const samples = await lastValueFrom(from(heldOut).pipe(task.sampler({ rng: new Rng(99) }), toArray()));
  const batch = collate(samples, task.inputShapes([10]), task.labelShape([10]));
  const accuracy = tf.tidy(
    () => task.metric(batch.labels, task.forward(encoder, { head }, batch.inputs, false)).dataSync()[0]!,
  );
  disposeBatch(batch);
  const positives = samples.filter((s) => s.label[0] === 1).length;
  const baseline = Math.max(positives, samples.length - positives) / samples.length;
  const scorer = { encoder, head, tokenizer, variant, maxLength: 10, turns: 3 };
  const rng = new Rng(7);
  const original = heldOut.map((d) => scoreDialogue(scorer, d).score!);
  const shuffled = heldOut.map((d) => scoreDialogue(scorer, { ...d, turns: rng.shuffle([...d.turns]) }).score!);
  head.dispose();
  encoder.dispose();
  return {
    accuracy,
    baseline,
    auc: rocAuc(original, shuffled),
    firstLoss: mean(losses.slice(0, 10)),
    lastLoss: mean(losses.slice(-20)),
  };
}
