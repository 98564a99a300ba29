import { textSetupOf } from '../text/textTaskConfig.ts';
import * as tf from '@tensorflow/tfjs';
import { defer, mergeMap, type Observable, type OperatorFunction } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import type { Rng } from '../../core/rng.ts';
import type { Dialogue } from '../../text/dialogue.ts';
import { encodeText } from '../../models/textEncoder.ts';
import type { Tokenizer } from '../../text/tokenizers/Tokenizer.ts';
import { type PretextTask, type SamplerContext, featureSizeOf } from '../task.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { binaryAccuracy } from '../losses/binaryCrossEntropy.ts';
import { binaryCrossEntropy } from '../losses/binaryCrossEntropy.ts';
import { checkPositiveInteger, fitIds } from '../../text/tokenizedSentence.ts';

/** Options of the dialogue utterance-order task. */
export interface DialogueOrderOptions {
  /** Encodes each utterance (`encode(text)` with [CLS] ... [SEP]). Required to sample or score. */
  tokenizer?: Tokenizer;
  /** Tokens per utterance, special tokens included; longer ones are cut. Default 24. */
  maxLength?: number;
  /** Consecutive utterances per sample. Dialogues shorter than this are padded in front with empty turns. Default 3. */
  turns?: number;
  /** Windows between the starts of consecutive samples of one dialogue. Default 1. */
  stride?: number;
  /** Fraction of negatives (turns out of order). Default 0.5. */
  negativeFraction?: number;
}

type ResolvedDialogueOrderOptions = Required<Omit<DialogueOrderOptions, 'tokenizer'>> & { tokenizer?: Tokenizer };

function validateDialogueOrderOptions(options: DialogueOrderOptions): ResolvedDialogueOrderOptions {
  const { tokenizer, maxLength = 24, turns = 3, stride = 1, negativeFraction = 0.5 } = options;
  checkPositiveInteger('maxLength', maxLength);
  checkPositiveInteger('stride', stride);
  if (!Number.isInteger(turns) || turns < 2)
    throw new OptionError('turns', turns, 'an integer >= 2 (an order needs two turns)');
  if (!(negativeFraction > 0 && negativeFraction < 1))
    throw new OptionError('negativeFraction', negativeFraction, 'a fraction in (0, 1), e.g. 0.5');
  return { tokenizer, maxLength, turns, stride, negativeFraction };
}

function requireTokenizer(options: ResolvedDialogueOrderOptions): Tokenizer {
  if (!options.tokenizer)
    throw new OptionError(
      'tokenizer',
      undefined,
      'a tokenizer: createDialogueOrderTask({ tokenizer }) (e.g. from loadTokenizer or WordVocab.train)',
    );
  return options.tokenizer;
}

/** Each turn's ids, cut and padded to maxLength. */
function encodeTurns(dialogue: Dialogue, tokenizer: Tokenizer, maxLength: number): Float32Array[] {
  const pad = tokenizer.padId ?? 0;
  return dialogue.turns.map((turn) => {
    const ids = tokenizer.encode(turn);
    // Keep [SEP] at the end of a cut utterance, so the encoder always sees where it stops.
    const cut = ids.length > maxLength ? [...ids.slice(0, maxLength - 1), ids[ids.length - 1]!] : ids;
    return fitIds(cut, maxLength, pad);
  });
}

/** Windows of `turns` consecutive encoded utterances, `stride` apart; a short dialogue is front-padded with empty turns. */
function turnWindows(encoded: Float32Array[], turns: number, stride: number, padId: number): Float32Array[][] {
  const maxLength = encoded[0]?.length ?? 0;
  const padded = [
    ...Array.from({ length: Math.max(0, turns - encoded.length) }, () => new Float32Array(maxLength).fill(padId)),
    ...encoded,
  ];
  const windows: Float32Array[][] = [];
  for (let start = 0; start + turns <= padded.length; start += stride) windows.push(padded.slice(start, start + turns));
  return windows;
}

/**
 * A negative order of a window, as in Wu et al.: half the time two turns swapped, else a random shuffle; never the
 * original order. Empty padding turns stay in front, so a negative is never told apart by where the padding is.
 */
export function disorder(
  window: Float32Array[],
  rng: Rng,
  isEmpty: (turn: Float32Array) => boolean,
): Float32Array[] | undefined {
  const first = window.findIndex((turn) => !isEmpty(turn));
  const real = window.slice(first);
  if (first < 0 || real.length < 2) return undefined;
  let order = real.map((_, i) => i);
  if (rng.next() < 0.5) {
    const i = rng.int(real.length);
    const j = (i + 1 + rng.int(real.length - 1)) % real.length;
    [order[i], order[j]] = [order[j]!, order[i]!];
  } else {
    do order = rng.shuffle(order);
    while (order.every((v, i) => v === i));
  }
  return [...window.slice(0, first), ...order.map((i) => real[i]!)];
}

/**
 * The sampler: each window of `turns` consecutive utterances of a dialogue becomes one sample, in order (label 1)
 * or, with probability negativeFraction, out of order (label 0). Inputs `turns` arrays of `[maxLength]` ids.
 */
export function sampleUtteranceOrder(
  context: SamplerContext,
  options: ResolvedDialogueOrderOptions,
): OperatorFunction<Dialogue, Sample> {
  const tokenizer = requireTokenizer(options);
  const padId = tokenizer.padId ?? 0;
  const isEmpty = (turn: Float32Array): boolean => turn.every((id) => id === padId);
  return (dialogues: Observable<Dialogue>) =>
    defer(() =>
      dialogues.pipe(
        mergeMap((dialogue): Sample[] =>
          turnWindows(encodeTurns(dialogue, tokenizer, options.maxLength), options.turns, options.stride, padId).map(
            (window) => {
              const negative =
                context.rng.next() < options.negativeFraction ? disorder(window, context.rng, isEmpty) : undefined;
              return {
                inputs: negative ?? window,
                label: Float32Array.of(negative ? 0 : 1),
                source: `${dialogue.source}#${dialogue.id}`,
              };
            },
          ),
        ),
      ),
    );
}

/**
 * Utterance vectors `[n, 2 * hidden]` of ids `[n, maxLength]`: the max over an utterance's real tokens of the
 * encoder's per-token BiGRU features (InferSent-style max pooling), zeros for an empty (padding) turn. Not the
 * encoder's `pooled` output: its forward half is the GRU state after the padding that follows a short utterance,
 * and with it the task stayed near chance on DailyDialog (validation accuracy 0.53 after 800 steps, against 0.65
 * with max pooling, same seed and the settings of bench/textTasks.ts).
 */
function utteranceVectors(encoder: tf.LayersModel, ids: tf.Tensor, training: boolean, padId: number): tf.Tensor2D {
  return tf.tidy(() => {
    const { sequence } = encodeText(encoder, ids, training);
    const real = tf.expandDims(tf.cast(tf.notEqual(ids, padId), 'float32'), -1); // [n, maxLength, 1]
    // Pads get -1e4 so that they never win the max; the product with `nonEmpty` keeps an empty turn at zero.
    const maxed = tf.max(tf.add(sequence, tf.mul(tf.sub(real, 1), 1e4)), 1);
    const nonEmpty = tf.cast(tf.greater(tf.sum(real, 1), 0), 'float32');
    return tf.mul(maxed, nonEmpty) as tf.Tensor2D;
  });
}

/**
 * Logits `[batch, 1]` for windows given as `turns` tensors `[batch, maxLength]`. The head reads each pair of
 * adjacent utterances (a, b) as `[a, b, a * b, a - b]`, `[batch, turns - 1, 8 * hidden]`.
 */
function orderLogits(
  encoder: tf.LayersModel,
  head: tf.LayersModel,
  inputs: tf.Tensor[],
  training: boolean,
  padId: number,
): tf.Tensor {
  return tf.tidy(() => {
    const batch = inputs[0]!.shape[0]!;
    const turns = inputs.length;
    // All utterances in one encoder pass: [turns * batch, maxLength] -> [turns * batch, 2 * hidden], turn-major.
    const vectors = utteranceVectors(encoder, tf.concat(inputs, 0), training, padId);
    const perTurn = tf.transpose(tf.reshape(vectors, [turns, batch, -1]), [1, 0, 2]); // [batch, turns, 2 * hidden]
    const a = tf.slice(perTurn, [0, 0, 0], [-1, turns - 1, -1]);
    const b = tf.slice(perTurn, [0, 1, 0], [-1, turns - 1, -1]);
    return head.apply(tf.concat([a, b, tf.mul(a, b), tf.sub(a, b)], 2), { training }) as tf.Tensor;
  });
}

/**
 * Dialogue utterance order (Wu, Wang, Wang, "Self-Supervised Dialogue Learning", ACL 2019: inconsistent order
 * detection): is this window of consecutive utterances in its original order? Negatives swap two turns or shuffle
 * them. The shared text encoder embeds each utterance (max over its tokens' BiGRU features); the head compares
 * each pair of adjacent utterances with one dense layer shared by the pairs and outputs one logit `[batch, 1]`.
 *
 * @example
 * const task = createDialogueOrderTask({ tokenizer, maxLength: 24, turns: 3 });
 * readDialogues('dialogues_train.txt').pipe(task.sampler({ rng: new Rng(1) }));
 */
export function createDialogueOrderTask(options: DialogueOrderOptions = {}): PretextTask<Dialogue> {
  const resolved = validateDialogueOrderOptions(options);
  const { maxLength, turns } = resolved;
  return {
    name: 'dialogue-order',
    family: 'temporal',
    paper: 'Wu, Wang, Wang. Self-Supervised Dialogue Learning. ACL 2019',
    reads: 'dialogues',
    configure: (setup) => {
      const { tokenizer, config } = textSetupOf(setup, 'dialogue-order');
      return createDialogueOrderTask({ ...options, tokenizer, maxLength: config.maxLength, turns: config.turns });
    },
    sampler: (context) => sampleUtteranceOrder(context, resolved),
    inputShapes: () => Array.from({ length: turns }, () => [maxLength]),
    labelShape: () => [1],
    build(encoder, rng) {
      const featureSize = featureSizeOf(encoder);
      const seed = rng.int(2 ** 31);
      // featureSize is the encoder's pooled size (its GRU units); the per-token features are twice that.
      const pairs = tf.input({ shape: [turns - 1, 8 * featureSize], name: 'adjacent_pairs' });
      // One dense layer shared by every pair (it acts on the last axis), then one logit from all pairs together.
      const compared = tf.layers
        .dense({
          units: featureSize,
          activation: 'relu',
          kernelInitializer: tf.initializers.glorotUniform({ seed }),
          name: 'compare_pair',
        })
        .apply(pairs) as tf.SymbolicTensor;
      const flat = tf.layers.flatten().apply(compared) as tf.SymbolicTensor;
      const logit = tf.layers
        .dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2 }), name: 'in_order' })
        .apply(flat) as tf.SymbolicTensor;
      const head = tf.model({ inputs: pairs, outputs: logit, name: 'dialogue_order_head' });
      return { head };
    },
    forward: (encoder, { head }, inputs, training) =>
      orderLogits(encoder, head, inputs, training, resolved.tokenizer?.padId ?? 0),
    loss: binaryCrossEntropy,
    metric: binaryAccuracy,
  };
}

/** Dialogue order with the default options; it needs a tokenizer to sample (the CLI makes its own with one). */
export const dialogueOrder = createDialogueOrderTask();

/** What {@link scoreDialogue} needs: the trained encoder and head and the options the task was trained with. */
export interface DialogueScorer {
  encoder: tf.LayersModel;
  /** The `dialogue-order` head from training (`TrainResult.heads['dialogue-order']`). */
  head: tf.LayersModel;
  tokenizer: Tokenizer;
  /** As in training. Default 24. */
  maxLength?: number;
  /** As in training. Default 3. */
  turns?: number;
}

/** A dialogue's coherence: overall and per turn, each in [0, 1] (1: in a natural order). */
export interface DialogueScore {
  /** Mean probability over the dialogue's windows that each is in order. */
  score: number;
  /** Per turn, the mean probability of the windows that hold it. */
  turns: number[];
}

/** A dialogue with no window to score (fewer turns than a window, or only empty turns): no score, and why. */
export interface UnscoredDialogue {
  score: null;
  /** One `null` per turn. */
  turns: null[];
  /** Why there is no score, e.g. "2 turns: a window needs 3 consecutive turns". */
  reason: string;
}

/** The windows of one dialogue, encoded and ready to score in slices (see {@link scoreWindows}). */
export interface DialogueWindows {
  /** Windows of `turns` consecutive encoded utterances, stride 1. */
  windows: Float32Array[][];
  /** Real turns in the dialogue. */
  turnCount: number;
  /** Turns per window. */
  turns: number;
  maxLength: number;
  padId: number;
}

/**
 * A dialogue's windows as {@link scoreDialogue} scores them, or why it has none: a dialogue shorter than a window
 * (it would be scored on padding alone) or whose turns are all empty.
 */
export function dialogueWindows(scorer: DialogueScorer, dialogue: Dialogue): DialogueWindows | UnscoredDialogue {
  const options = validateDialogueOrderOptions({
    tokenizer: scorer.tokenizer,
    maxLength: scorer.maxLength,
    turns: scorer.turns,
  });
  const n = dialogue.turns.length;
  const unscored = (reason: string): UnscoredDialogue => ({
    score: null,
    turns: new Array<null>(n).fill(null),
    reason,
  });
  if (n < options.turns)
    return unscored(`${n} turn${n === 1 ? '' : 's'}: a window needs ${options.turns} consecutive turns`);
  if (dialogue.turns.every((t) => t.trim() === '')) return unscored('every turn is empty');
  const padId = scorer.tokenizer.padId ?? 0;
  const windows = turnWindows(encodeTurns(dialogue, scorer.tokenizer, options.maxLength), options.turns, 1, padId);
  return { windows, turnCount: n, turns: options.turns, maxLength: options.maxLength, padId };
}

/** The in-order probability of windows `[from, to)` of a dialogue: one encoder and head pass, `[to - from]`. */
export function scoreWindows(
  scorer: DialogueScorer,
  prepared: DialogueWindows,
  from = 0,
  to = prepared.windows.length,
): Float32Array {
  const slice = prepared.windows.slice(from, to);
  if (slice.length === 0) return new Float32Array(0);
  return tf.tidy(() => {
    const inputs = Array.from({ length: prepared.turns }, (_, k) =>
      tf.tensor2d(
        slice.flatMap((w) => [...w[k]!]),
        [slice.length, prepared.maxLength],
      ),
    );
    return tf
      .sigmoid(orderLogits(scorer.encoder, scorer.head, inputs, false, prepared.padId))
      .dataSync() as Float32Array;
  });
}

/** The dialogue's score and per-turn scores from the probabilities of all its windows (in order). */
export function combineWindowScores(prepared: DialogueWindows, probabilities: ArrayLike<number>): DialogueScore {
  const n = prepared.turnCount;
  const sums = new Array<number>(n).fill(0);
  const counts = new Array<number>(n).fill(0);
  // With n >= turns there is no front padding: window w covers turns w .. w + turns - 1.
  for (let w = 0; w < probabilities.length; w++) {
    for (let k = 0; k < prepared.turns; k++) {
      sums[w + k]! += probabilities[w]!;
      counts[w + k]!++;
    }
  }
  let total = 0;
  for (let w = 0; w < probabilities.length; w++) total += probabilities[w]!;
  return { score: total / probabilities.length, turns: sums.map((s, i) => s / counts[i]!) };
}

/**
 * Scores how coherent a dialogue's order is with a trained dialogue-order model: every window of consecutive
 * turns (stride 1) gets the model's probability of being in order; the dialogue's score is their mean, and each
 * turn's score is the mean over the windows that contain it (a turn out of place drags its windows down). A
 * dialogue without a window (fewer turns than a window, or all turns empty) is scored `null` with the reason.
 *
 * @example
 * const { score, turns } = scoreDialogue({ encoder, head: result.heads['dialogue-order'], tokenizer }, dialogue);
 */
export function scoreDialogue(scorer: DialogueScorer, dialogue: Dialogue): DialogueScore | UnscoredDialogue {
  const prepared = dialogueWindows(scorer, dialogue);
  if ('reason' in prepared) return prepared;
  return combineWindowScores(prepared, scoreWindows(scorer, prepared));
}
