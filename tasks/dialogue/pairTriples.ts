// The `pairs` variant of dialogue-order: Wu et al.'s triples of utterance pairs, judged against an ordered and a
// misordered reference triple from the same dialogue (their sampling-based self-supervised network, SSN).
import * as tf from '@tensorflow/tfjs';
import { defer, mergeMap, type Observable, type OperatorFunction } from 'rxjs';
import type { Rng } from '../../core/rng.ts';
import type { Sample } from '../../pipeline/sample.ts';
import type { Dialogue } from '../../text/dialogue.ts';
import type { Tokenizer } from '../../text/tokenizers/Tokenizer.ts';
import type { SamplerContext } from '../task.ts';
import { disorder, encodeTurns, pairFeatures, slotVectors } from './utterances.ts';

/** Pairs in a triple. */
export const PAIRS_PER_TRIPLE = 3;
/** Consecutive turns that hold a triple of pairs that share no utterance: the least a dialogue needs. */
export const PAIR_WINDOW_TURNS = 2 * PAIRS_PER_TRIPLE;
/** Utterance inputs of a sample: the target triple's six, then the reference triple's six. */
export const PAIR_SLOTS = 4 * PAIRS_PER_TRIPLE;

/** A triple: the positions of its pairs, pair p being turns (p, p + 1). */
export type Triple = readonly [number, number, number];

/**
 * A uniform draw among the triples of pairs of a dialogue of `turns` turns whose pairs share no utterance
 * (positions i < j < k with j >= i + 2 and k >= j + 2), in increasing order; `undefined` below 6 turns.
 * Drawing 3 of the `turns - 3` shifted positions and spreading them by 0, 1, 2 makes every such triple equally
 * likely without rejection.
 */
export function drawTriple(turns: number, rng: Rng): Triple | undefined {
  const slots = turns - 3;
  if (slots < PAIRS_PER_TRIPLE) return undefined;
  const picked = new Set<number>();
  while (picked.size < PAIRS_PER_TRIPLE) picked.add(rng.int(slots));
  const [i, j, k] = [...picked].sort((a, b) => a - b) as [number, number, number];
  return [i, j + 1, k + 2];
}

/** Every triple of {@link drawTriple} for `turns` turns that has none of `avoid`'s pair positions, in order. */
function triplesAvoiding(turns: number, avoid: Triple): Triple[] {
  const out: Triple[] = [];
  const free = (p: number): boolean => !avoid.includes(p);
  for (let i = 0; i + 4 <= turns - 2; i++)
    for (let j = i + 2; j + 2 <= turns - 2; j++)
      for (let k = j + 2; k <= turns - 2; k++) if (free(i) && free(j) && free(k)) out.push([i, j, k]);
  return out;
}

/** Past this many turns a reference is drawn by rejection rather than picked from the enumerated triples. */
const ENUMERATE_BELOW = 24;

/**
 * The ordered reference triple of a target: a uniform draw among the dialogue's triples that hold none of the
 * target's pairs, or `undefined` when the dialogue has none (6 turns, or 7 turns and a target that spans them).
 * Never one of the target's pairs: with one, the order could be read off by matching it in both triples, which
 * says nothing about dialogue and would vouch for any order at scoring, where the reference comes from the
 * dialogue as given.
 */
export function drawReference(turns: number, target: Triple, rng: Rng): Triple | undefined {
  if (turns < ENUMERATE_BELOW) {
    const candidates = triplesAvoiding(turns, target);
    return candidates.length === 0 ? undefined : candidates[rng.int(candidates.length)];
  }
  // Long dialogues: most draws avoid the target; 64 failures in a row do not happen in practice.
  for (let attempt = 0; attempt < 64; attempt++) {
    const triple = drawTriple(turns, rng)!;
    if (!triple.some((p) => target.includes(p))) return triple;
  }
  return undefined;
}

/** A misordering of the three pair positions 0, 1, 2 (see `disorder`): the misordered reference's order. */
function misorder(rng: Rng): number[] {
  return disorder([0, 1, 2], rng, () => false)!;
}

/**
 * One sample's inputs: the target's pairs in `targetOrder`, the reference's pairs in order (empty turns when there
 * is no reference) and the misordered reference's order `[3]` (pair indices into the reference).
 */
function pairInputs(
  encoded: readonly Float32Array[],
  targetOrder: readonly number[],
  reference: Triple | undefined,
  misordered: readonly number[],
  empty: Float32Array,
): Float32Array[] {
  const pair = (p: number): Float32Array[] => [encoded[p]!, encoded[p + 1]!];
  const referenceTurns = reference
    ? reference.flatMap(pair)
    : new Array<Float32Array>(2 * PAIRS_PER_TRIPLE).fill(empty);
  return [...targetOrder.flatMap(pair), ...referenceTurns, Float32Array.from(misordered)];
}

/** What the pair-triple sampler and windows need. */
export interface PairTripleSettings {
  tokenizer: Tokenizer;
  maxLength: number;
  negativeFraction: number;
}

/**
 * The sampler of the `pairs` variant. A dialogue of n >= 6 turns gives n - 5 samples (as many as it has windows of
 * six turns); each takes a target triple of pairs uniformly among the dialogue's triples ({@link drawTriple}: any
 * positions, not only adjacent ones, as in Wu et al.'s example ⟨(Q1, A1), (Q4, A4), (Q2, A2)⟩), in order (label 1)
 * or, with probability negativeFraction, misordered (label 0: two pairs swapped or the three shuffled), with an
 * ordered reference triple ({@link drawReference}) and the same reference misordered. Inputs: 12 utterances
 * `[maxLength]` (the target's three pairs, then the reference's) and the misordered reference's order `[3]`.
 * Shorter dialogues give no sample.
 */
export function samplePairTriples(
  context: SamplerContext,
  settings: PairTripleSettings,
): OperatorFunction<Dialogue, Sample> {
  const { tokenizer, maxLength, negativeFraction } = settings;
  const empty = new Float32Array(maxLength).fill(tokenizer.padId ?? 0);
  const rng = context.rng;
  return (dialogues: Observable<Dialogue>) =>
    defer(() =>
      dialogues.pipe(
        mergeMap((dialogue): Sample[] => {
          const n = dialogue.turns.length;
          if (n < PAIR_WINDOW_TURNS) return [];
          const encoded = encodeTurns(dialogue, tokenizer, maxLength);
          return Array.from({ length: n - PAIR_WINDOW_TURNS + 1 }, () => {
            const target = drawTriple(n, rng)!;
            const negative = rng.next() < negativeFraction;
            const order = negative ? disorder([...target], rng, () => false)! : [...target];
            const reference = drawReference(n, target, rng);
            return {
              inputs: pairInputs(encoded, order, reference, misorder(rng), empty),
              label: Float32Array.of(negative ? 0 : 1),
              source: `${dialogue.source}#${dialogue.id}`,
            };
          });
        }),
      ),
    );
}

/**
 * The scoring windows of the `pairs` variant for a dialogue of n >= 6 turns, as samples' inputs: one a start
 * s = 0 .. n - 6, the target being the pairs (s, s+1), (s+2, s+3), (s+4, s+5) in the order given, with references
 * drawn by `rng` as in training.
 */
export function pairTripleWindows(dialogue: Dialogue, settings: PairTripleSettings, rng: Rng): Float32Array[][] {
  const { tokenizer, maxLength } = settings;
  const n = dialogue.turns.length;
  const encoded = encodeTurns(dialogue, tokenizer, maxLength);
  const empty = new Float32Array(maxLength).fill(tokenizer.padId ?? 0);
  return Array.from({ length: Math.max(0, n - PAIR_WINDOW_TURNS + 1) }, (_, s) => {
    const target: Triple = [s, s + 2, s + 4];
    return pairInputs(encoded, target, drawReference(n, target, rng), misorder(rng), empty);
  });
}

/**
 * The head of the `pairs` variant: the order-reasoning part of Wu et al.'s SSN. Input `[3, 3, 8 * hidden]`: the
 * pair features of the target, the ordered reference and the misordered reference triple, in that order. One
 * dense layer acts on every pair; a forward and a backward GRU read each triple's three pairs (the same weights for
 * the three triples), each max-pooled over the pairs (`[2 * hidden]` a triple); then an MLP on the three triples
 * to one logit `[batch, 1]`. Every layer is applied once (time-distributed over the triples): a layer applied to
 * several inputs is never freed by `dispose`, as tfjs counts a reference per call.
 */
export function buildPairTripleHead(hidden: number, seed: number): tf.LayersModel {
  const glorot = (k: number) => tf.initializers.glorotUniform({ seed: seed + k });
  const triples = tf.input({ shape: [PAIRS_PER_TRIPLE, PAIRS_PER_TRIPLE, 8 * hidden], name: 'triples' });
  const pairs = tf.layers
    .dense({ units: hidden, activation: 'relu', kernelInitializer: glorot(0), name: 'compare_pair' })
    .apply(triples) as tf.SymbolicTensor; // [batch, 3 triples, 3 pairs, hidden]
  // Two GRUs rather than tf.layers.bidirectional, whose backward copy would start from the same seeded weights.
  const reason = (goBackwards: boolean, k: number): tf.SymbolicTensor => {
    const name = goBackwards ? 'order_backward' : 'order_forward';
    const gru = tf.layers.gru({
      units: hidden,
      returnSequences: true,
      goBackwards,
      kernelInitializer: glorot(k),
      recurrentInitializer: tf.initializers.orthogonal({ seed: seed + k + 10 }),
    });
    const steps = tf.layers.timeDistributed({ layer: gru, name }).apply(pairs) as tf.SymbolicTensor;
    return tf.layers
      .timeDistributed({ layer: tf.layers.globalMaxPooling1d({}), name: `${name}_pool` })
      .apply(steps) as tf.SymbolicTensor; // [batch, 3 triples, hidden]
  };
  const perTriple = tf.layers
    .concatenate({ name: 'triple_vectors' })
    .apply([reason(false, 1), reason(true, 2)]) as tf.SymbolicTensor;
  const joined = tf.layers.flatten({ name: 'target_and_references' }).apply(perTriple) as tf.SymbolicTensor;
  const reasoned = tf.layers
    .dense({ units: hidden, activation: 'relu', kernelInitializer: glorot(3), name: 'reason' })
    .apply(joined) as tf.SymbolicTensor;
  const logit = tf.layers
    .dense({ units: 1, kernelInitializer: glorot(4), name: 'in_order' })
    .apply(reasoned) as tf.SymbolicTensor;
  return tf.model({ inputs: triples, outputs: logit, name: 'dialogue_order_pairs_head' });
}

/**
 * Logits `[batch, 1]` of the `pairs` variant for a batch of its inputs: 12 utterance inputs `[batch, maxLength]`
 * and the misordered reference's order `[batch, 3]`.
 */
export function pairTripleLogits(
  encoder: tf.LayersModel,
  head: tf.LayersModel,
  inputs: readonly tf.Tensor[],
  training: boolean,
  padId: number,
): tf.Tensor {
  return tf.tidy(() => {
    const batch = inputs[0]!.shape[0]!;
    const vectors = slotVectors(encoder, inputs.slice(0, PAIR_SLOTS), training, padId); // [batch, 12, 2h]
    // Slots alternate first and second utterance of a pair: [batch, 6 pairs, 2, 2h].
    const split = tf.reshape(vectors, [batch, 2 * PAIRS_PER_TRIPLE, 2, -1]);
    const first = tf.squeeze(tf.slice(split, [0, 0, 0, 0], [-1, -1, 1, -1]), [2]);
    const second = tf.squeeze(tf.slice(split, [0, 0, 1, 0], [-1, -1, 1, -1]), [2]);
    const pairs = pairFeatures(first, second); // [batch, 6, 8h]
    const target = tf.slice(pairs, [0, 0, 0], [-1, PAIRS_PER_TRIPLE, -1]);
    const ordered = tf.slice(pairs, [0, PAIRS_PER_TRIPLE, 0], [-1, PAIRS_PER_TRIPLE, -1]);
    // The misordered reference: row r of sample b is ordered[b, order[b, r]], a batched product with one-hots.
    const order = tf.oneHot(tf.cast(inputs[PAIR_SLOTS]!, 'int32'), PAIRS_PER_TRIPLE) as tf.Tensor3D; // [batch, 3, 3]
    const misordered = tf.matMul(tf.cast(order, 'float32') as tf.Tensor3D, ordered as tf.Tensor3D);
    return head.apply(tf.stack([target, ordered, misordered], 1), { training }) as tf.Tensor;
  });
}
