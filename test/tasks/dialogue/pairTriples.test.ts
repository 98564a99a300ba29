import test from 'ava';
import { longSerial } from '../../_long.ts';
import * as tf from '@tensorflow/tfjs';
import { from, lastValueFrom, toArray } from 'rxjs';
import { selectBackend } from '../../../models/backend.ts';
import { Rng } from '../../../core/rng.ts';
import type { Sample } from '../../../pipeline/sample.ts';
import { drawReference, drawTriple, type Triple } from '../../../tasks/dialogue/pairTriples.ts';
import { createDialogueOrderTask, scoreDialogue } from '../../../tasks/dialogue/utteranceOrder.ts';
import type { Dialogue } from '../../../text/dialogue.ts';
import { buildTextEncoder } from '../../../models/textEncoder.ts';
import { WordVocab } from '../../../text/tokenizers/WordVocab.ts';
import { stagedDialogues, trainAndMeasure } from './_dialogues.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

const validTriple = (t: Triple, turns: number): boolean =>
  t[0] >= 0 && t[1] >= t[0] + 2 && t[2] >= t[1] + 2 && t[2] <= turns - 2;

test('a drawn triple holds three pairs that share no turn, every such triple about equally often', (t) => {
  t.is(drawTriple(5, new Rng(1)), undefined);
  t.deepEqual(drawTriple(6, new Rng(1)), [0, 2, 4]);
  const rng = new Rng(2);
  const counts = new Map<string, number>();
  for (let i = 0; i < 3500; i++) {
    const triple = drawTriple(9, rng)!;
    t.true(validTriple(triple, 9), `${triple}`);
    counts.set(triple.join(), (counts.get(triple.join()) ?? 0) + 1);
  }
  // 9 turns: the triples of 3 among the 6 shifted positions, C(6, 3) = 20, each drawn 175 times on average.
  t.is(counts.size, 20);
  for (const [triple, n] of counts) t.true(n > 120 && n < 230, `${triple}: ${n}`);
});

test('a reference never holds one of the target pairs, and there is none where the dialogue has no such triple', (t) => {
  t.is(drawReference(6, [0, 2, 4], new Rng(1)), undefined);
  t.deepEqual(drawReference(7, [0, 2, 4], new Rng(1)), [1, 3, 5]);
  t.is(drawReference(7, [0, 2, 5], new Rng(1)), undefined);
  for (const turns of [8, 12, 30]) {
    const rng = new Rng(turns);
    for (let i = 0; i < 200; i++) {
      const target = drawTriple(turns, rng)!;
      const reference = drawReference(turns, target, rng);
      if (turns >= 12) t.truthy(reference);
      if (reference) {
        t.true(validTriple(reference, turns));
        t.false(
          reference.some((p) => target.includes(p)),
          `${target} / ${reference}`,
        );
      }
    }
  }
});

/** Dialogues whose turn p of dialogue d reads `d<d>u<p>`: each turn is one word, so ids give positions back. */
function numberedDialogues(lengths: number[]): Dialogue[] {
  return lengths.map((n, d) => ({
    id: String(d),
    turns: Array.from({ length: n }, (_, p) => `d${d}u${p}`),
    source: 'numbered',
  }));
}

test('samples: n - 5 a dialogue, ordered targets in order, references from the same dialogue, reproducible', async (t) => {
  const dialogues = numberedDialogues([4, 5, 6, 7, 8, 10, 12, 15, 20, 9, 11, 13]);
  const tokenizer = await WordVocab.train(dialogues.flatMap((d) => d.turns));
  // Token id -> [dialogue, turn], from each turn's [CLS] word [SEP].
  const where = new Map<number, [number, number]>();
  dialogues.forEach((d, di) => d.turns.forEach((turn, p) => where.set(tokenizer.encode(turn)[1]!, [di, p])));
  const task = createDialogueOrderTask({ variant: 'pairs', tokenizer, maxLength: 4 });
  const sample = (seed: number): Promise<Sample[]> =>
    lastValueFrom(from(dialogues).pipe(task.sampler({ rng: new Rng(seed) }), toArray()));
  const samples = await sample(3);
  t.is(
    samples.length,
    dialogues.reduce((n, d) => n + Math.max(0, d.turns.length - 5), 0),
  );
  t.deepEqual(task.inputShapes([4]), [...new Array<number[]>(12).fill([4]), [3]]);
  let negatives = 0;
  let withReference = 0;
  for (const s of samples) {
    t.is(s.inputs.length, 13);
    const turnAt = (slot: number): [number, number] | undefined => where.get(s.inputs[slot]![1]!);
    const pairsOf = (from: number): ([number, number] | undefined)[] => [0, 1, 2].map((k) => turnAt(from + 2 * k));
    const dialogue = turnAt(0)![0];
    // Every slot of a pair holds turns p and p + 1 of the sample's own dialogue.
    for (let slot = 0; slot < 12; slot += 2) {
      const [a, b] = [turnAt(slot), turnAt(slot + 1)];
      if (slot >= 6 && a === undefined) continue; // an empty reference
      t.is(a![0], dialogue);
      t.is(b![0], dialogue);
      t.is(b![1], a![1] + 1);
    }
    const target = pairsOf(0).map((x) => x![1]);
    const increasing = target[0]! < target[1]! && target[1]! < target[2]!;
    t.is(s.label[0], increasing ? 1 : 0);
    if (!increasing) negatives++;
    t.is(new Set(target).size, 3);
    const reference = pairsOf(6);
    if (reference[0] !== undefined) {
      withReference++;
      const positions = reference.map((x) => x![1]);
      t.true(validTriple(positions as unknown as Triple, dialogues[dialogue]!.turns.length));
      t.false(positions.some((p) => target.includes(p)));
    }
    const order = [...s.inputs[12]!];
    t.deepEqual([...order].sort(), [0, 1, 2]);
    t.notDeepEqual(order, [0, 1, 2]);
  }
  t.true(Math.abs(negatives / samples.length - 0.5) < 0.12, `negatives ${negatives}/${samples.length}`);
  t.true(withReference > samples.length * 0.8, `with a reference: ${withReference}/${samples.length}`);
  const again = await sample(3);
  t.deepEqual(
    again.map((s) => s.inputs.map((x) => [...x])),
    samples.map((s) => s.inputs.map((x) => [...x])),
  );
  const other = await sample(4);
  t.notDeepEqual(
    other.map((s) => s.inputs.map((x) => [...x])),
    samples.map((s) => s.inputs.map((x) => [...x])),
  );
});

test('scoring: windows of six turns, and a dialogue too short for one is null with the reason', async (t) => {
  const [short, long] = numberedDialogues([5, 9]);
  const tokenizer = await WordVocab.train([...short!.turns, ...long!.turns]);
  const encoder = buildTextEncoder({ vocabSize: tokenizer.vocabSize, maxLength: 4, hiddenSize: 8, seed: 1 });
  const task = createDialogueOrderTask({ variant: 'pairs', tokenizer, maxLength: 4 });
  const { head } = task.build(encoder, new Rng(1));
  const scorer = { encoder, head, tokenizer, variant: 'pairs' as const, maxLength: 4 };
  const before = tf.memory().numTensors;
  t.like(scoreDialogue(scorer, short!), {
    score: null,
    reason: '5 turns: a window needs 6 consecutive turns (three utterance pairs)',
  });
  const scored = scoreDialogue(scorer, long!);
  t.is(scored.turns.length, 9);
  t.true(scored.score !== null && scored.score > 0 && scored.score < 1);
  // The reference draws are seeded: a dialogue scores the same every time.
  t.deepEqual(scoreDialogue(scorer, long!), scored);
  t.is(tf.memory().numTensors, before);
  head.dispose();
  encoder.dispose();
});

const dialogues = stagedDialogues(300, 1);
const heldOut = stagedDialogues(60, 2);

longSerial('the pairs variant learns on held-out dialogues; with shuffled labels the same run does not', async (t) => {
  const before = tf.memory().numTensors;
  const learned = await trainAndMeasure('pairs', dialogues, heldOut, false, 60);
  const control = await trainAndMeasure('pairs', dialogues, heldOut, true, 60);
  t.log(
    `held-out accuracy ${learned.accuracy.toFixed(3)} (majority baseline ${learned.baseline.toFixed(3)}), ` +
      `original vs shuffled AUC ${learned.auc.toFixed(3)}; shuffled labels: accuracy ${control.accuracy.toFixed(3)}, AUC ${control.auc.toFixed(3)}`,
  );
  // Margin 0.2 over the majority baseline, and an AUC over 0.8 (chance 0.5); the control must miss both.
  t.true(learned.accuracy > learned.baseline + 0.2);
  t.true(learned.auc > 0.8);
  t.false(control.accuracy > control.baseline + 0.2);
  t.false(control.auc > 0.8);
  t.is(tf.memory().numTensors, before);
});
