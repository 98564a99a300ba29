import * as tf from '@tensorflow/tfjs';
import { filter, lastValueFrom, take, toArray } from 'rxjs';
import { TokenEmbedding } from '../../models/textEncoder.ts';
import type { Tokenizer } from '../../text/tokenizers/Tokenizer.ts';
import { readDialogues } from '../../text/dialogue.ts';
import { scoreDialogue } from '../../tasks/dialogue/utteranceOrder.ts';
import { loadDialogueScorer } from '../scoreDialogues.ts';

/** A word and the words whose input embeddings are nearest to it. */
export interface WordNeighbours {
  word: string;
  neighbours: { word: string; similarity: number }[];
}

/** A dialogue with its coherence score and each turn's. */
export interface ScoredTurns {
  id: string;
  source: string;
  score: number | null;
  turns: { text: string; score: number | null }[];
  reason?: string;
}

/** Everyday English words looked up in a text run's vocabulary; those it holds as whole tokens are shown. */
export const COMMON_WORDS: readonly string[] = [
  'the',
  'man',
  'woman',
  'day',
  'night',
  'good',
  'said',
  'king',
  'time',
  'house',
  'water',
  'love',
  'eyes',
  'hand',
  'little',
  'great',
  'old',
  'young',
  'father',
  'mother',
  'thank',
  'please',
  'money',
  'work',
  'food',
  'happy',
  'went',
  'know',
  'red',
  'two',
];

/**
 * Nearest neighbours of common words in a text encoder's token embedding table (`TokenEmbedding`, the encoder's
 * first layer), by cosine similarity, as word2vec papers show them. Words the tokenizer does not hold whole, and
 * special or sub-word tokens (`[PAD]`, `##ing`), are left out of both sides.
 */
export function wordNeighbours(
  encoder: tf.LayersModel,
  tokenizer: Tokenizer,
  words: readonly string[] = COMMON_WORDS,
  k = 8,
): WordNeighbours[] {
  const layer = encoder.layers.find((l) => l instanceof TokenEmbedding);
  if (!layer) return [];
  const table = tf.tidy(() => {
    const w = layer.getWeights()[0]!;
    return tf.div(w, tf.add(tf.norm(w, 2, 1, true), 1e-8)).arraySync() as number[][];
  });
  const isWord = (token: string | undefined): token is string => !!token && /^[\p{L}\p{N}']+$/u.test(token);
  const candidates = table.map((_, id) => id).filter((id) => isWord(tokenizer.idToToken(id)));
  const out: WordNeighbours[] = [];
  for (const word of words) {
    const id = tokenizer.tokenToId(word);
    if (id === undefined || id >= table.length) continue;
    const row = table[id]!;
    const scored = candidates
      .filter((c) => c !== id)
      .map((c) => ({ word: tokenizer.idToToken(c)!, similarity: row.reduce((s, v, d) => s + v * table[c]![d]!, 0) }));
    scored.sort((a, b) => b.similarity - a.similarity);
    out.push({
      word,
      neighbours: scored.slice(0, k).map((s) => ({ ...s, similarity: Math.round(s.similarity * 1000) / 1000 })),
    });
  }
  return out;
}

/**
 * The first `count` dialogues of `files` with enough turns to score, each turn with its coherence score from the
 * run's dialogue-order model (see `scoreDialogue`: per turn, the geometric mean over the windows holding it).
 */
export async function scoredDialogues(runDir: string, files: readonly string[], count = 4): Promise<ScoredTurns[]> {
  const scorer = await loadDialogueScorer(runDir);
  try {
    const needed = scorer.variant === 'pairs' ? 6 : scorer.turns;
    const dialogues = await lastValueFrom(
      readDialogues(files, { onInvalid: 'skip' }).pipe(
        filter((d) => d.turns.length >= needed),
        take(count),
        toArray(),
      ),
    );
    return dialogues.map((dialogue) => {
      const s = scoreDialogue(scorer, dialogue);
      return {
        id: dialogue.id,
        source: dialogue.source,
        score: s.score,
        reason: 'reason' in s ? s.reason : undefined,
        turns: dialogue.turns.map((text, t) => ({ text, score: s.turns[t] ?? null })),
      };
    });
  } finally {
    scorer.encoder.dispose();
    scorer.head.dispose();
  }
}
