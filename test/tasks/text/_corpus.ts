import { Rng } from '../../../core/rng.ts';
import { SPECIAL_TOKENS } from '../../../text/tokenizers/Tokenizer.ts';
import type { TokenizedSentence } from '../../../text/tokenizedSentence.ts';

/** Four topics, each with its own nouns, verbs and adjectives: words of one topic co-occur within a document. */
export const TOPICS = [
  {
    nouns: ['ship', 'sail', 'harbour', 'captain', 'wave', 'anchor'],
    verbs: ['rows', 'steers', 'drifts', 'docks'],
    adjectives: ['salty', 'windy', 'blue', 'wet'],
  },
  {
    nouns: ['bread', 'oven', 'baker', 'flour', 'crust', 'dough'],
    verbs: ['bakes', 'kneads', 'rises', 'cools'],
    adjectives: ['warm', 'fresh', 'golden', 'soft'],
  },
  {
    nouns: ['horse', 'saddle', 'rider', 'stable', 'hoof', 'mane'],
    verbs: ['gallops', 'trots', 'jumps', 'grazes'],
    adjectives: ['fast', 'brown', 'tall', 'wild'],
  },
  {
    nouns: ['star', 'planet', 'comet', 'orbit', 'moon', 'rocket'],
    verbs: ['spins', 'glows', 'orbits', 'falls'],
    adjectives: ['bright', 'distant', 'cold', 'dark'],
  },
];
const FUNCTION_WORDS = ['the', 'a', 'near', 'and', 'with', 'very'];

/** The words of the procedural corpus: the special tokens at 0..4, then every word. */
export const WORDS: string[] = [
  ...SPECIAL_TOKENS,
  ...FUNCTION_WORDS,
  ...TOPICS.flatMap((t) => [...t.nouns, ...t.verbs, ...t.adjectives]),
];
const ID = new Map(WORDS.map((w, i) => [w, i]));

/** A {@link WordLookup} over {@link WORDS}. */
export const lookup = { tokenToId: (w: string) => ID.get(w), idToToken: (id: number) => WORDS[id] };

/** One sentence of a topic: a few templates of function words and topic words. */
function sentence(topic: (typeof TOPICS)[number], rng: Rng): string[] {
  const pick = (xs: readonly string[]): string => xs[rng.int(xs.length)]!;
  const n = () => pick(topic.nouns);
  const v = () => pick(topic.verbs);
  const a = () => pick(topic.adjectives);
  switch (rng.int(3)) {
    case 0:
      return ['the', a(), n(), v(), 'near', 'the', n()];
    case 1:
      return ['a', 'very', a(), n(), v(), 'with', 'a', n()];
    default:
      return ['the', n(), 'and', 'the', n(), v()];
  }
}

/** `documents` documents of 4..7 sentences, each document on one topic. */
export function proceduralSentences(documents: number, seed: number): TokenizedSentence[] {
  const rng = new Rng(seed);
  const out: TokenizedSentence[] = [];
  for (let d = 0; d < documents; d++) {
    const topic = TOPICS[rng.int(TOPICS.length)]!;
    const count = 4 + rng.int(4);
    for (let s = 0; s < count; s++)
      out.push({
        ids: Int32Array.from(sentence(topic, rng).map((w) => ID.get(w)!)),
        document: d,
        source: `doc${d}:${s}`,
      });
  }
  return out;
}

/** Topic index of a word, or -1 for function words. */
export function topicOf(word: string): number {
  return TOPICS.findIndex((t) => [...t.nouns, ...t.verbs, ...t.adjectives].includes(word));
}

export { mean } from '../_learn.ts';
