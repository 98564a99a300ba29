import test from 'ava';
import { from, lastValueFrom, toArray } from 'rxjs';
import { Rng } from '../../../core/rng.ts';
import type { Sample } from '../../../pipeline/sample.ts';
import { createSkipgramTask, SkipgramDraws, skipgramDrawsOf } from '../../../tasks/text/skipgram.ts';
import { createMlmTask } from '../../../tasks/text/maskedLm.ts';
import { createNspTask, EarlierSentences } from '../../../tasks/text/nextSentence.ts';
import { countTokens, validateWord2vecOptions, WordSampler } from '../../../tasks/text/word2vec.ts';
import { defaultVocabulary, fitIds, type TokenizedSentence } from '../../../text/tokenizedSentence.ts';

// The samplers draw into typed arrays (process-corpus copies skip-gram rows into its shard columns whole). These
// tests hold them to the object-per-sample code they replaced, kept here as references: same numbers drawn in the
// same order, so the same samples (and the same shard bytes) for the same seed.

const vocabSize = 60;

/** Sentences of random ids over `vocabSize` (a few special ids and empty sentences among them), 3 a document. */
function randomSentences(n: number, seed: number): TokenizedSentence[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => ({
    ids: Int32Array.from({ length: rng.int(40) }, () => (rng.next() < 0.03 ? rng.int(5) : 5 + rng.int(vocabSize - 5))),
    document: Math.floor(i / 3),
    source: `s:${i}`,
  }));
}

const plain = (samples: Sample[]): unknown[] =>
  samples.map((s) => [s.inputs.map((a) => [...a]), [...s.label], s.source]);

test('skip-gram rows drawn into columns are the samples the per-sample sampler drew', async (t) => {
  const sentences = randomSentences(200, 1);
  const counts = countTokens(sentences, vocabSize);
  const options = { vocabSize, embeddingSize: 4, window: 4, negatives: 5, subsample: 1e-2, counts };
  const task = createSkipgramTask(options);
  const got = await lastValueFrom(from(sentences).pipe(task.sampler({ rng: new Rng(5) }), toArray()));
  // The sampler as it was: a number[] kept per sentence, one targets array per sample, drawn word by word.
  const resolved = validateWord2vecOptions(options);
  const words = new WordSampler(resolved, new Rng(5));
  const label = Float32Array.of(1, 0, 0, 0, 0, 0);
  const expected: Sample[] = [];
  for (const sentence of sentences) {
    const kept = words.keep(sentence.ids);
    for (let i = 0; i < kept.length; i++) {
      const b = words.radius();
      const center = Float32Array.of(kept[i]!);
      for (let j = Math.max(0, i - b); j <= Math.min(kept.length - 1, i + b); j++)
        if (j !== i) expected.push({ inputs: [center, words.targets(kept[j]!)], label, source: sentence.source });
    }
  }
  t.true(expected.length > 2000);
  t.deepEqual(plain(got), plain(expected));

  // The columns of the configured task, as process-corpus reads them: the same rows again.
  const draws = skipgramDrawsOf(task, new Rng(5))!;
  t.true(draws instanceof SkipgramDraws);
  const rows: number[][] = [];
  for (const sentence of sentences) {
    const n = draws.draw(sentence.ids);
    for (let r = 0; r < n; r++) rows.push([draws.centers[r]!, ...draws.targets.subarray(r * 6, r * 6 + 6)]);
  }
  t.deepEqual(
    rows,
    expected.map((s) => [s.inputs[0]![0]!, ...s.inputs[1]!]),
  );
  t.is(skipgramDrawsOf(createMlmTask(), new Rng(5)), undefined);
});

test('masked-LM samples drawn into typed arrays are those of the array-based sampler', async (t) => {
  const sentences = randomSentences(300, 2);
  for (const [maxLength, padId] of [
    [16, 0],
    [5, 0],
    [3, 0],
    [12, 7],
  ] as const) {
    const vocabulary = { ...defaultVocabulary(vocabSize), padId };
    const task = createMlmTask({ vocabulary, maxLength });
    const got = await lastValueFrom(from(sentences).pipe(task.sampler({ rng: new Rng(9) }), toArray()));
    // maskTokens as it was: arrays, a Set, Rng.shuffle, fitIds.
    const rng = new Rng(9);
    const special = new Set(vocabulary.specialIds);
    const randomIds = Int32Array.from({ length: vocabSize }, (_, i) => i).filter((i) => !special.has(i));
    const maxPredictions = Math.ceil(0.15 * maxLength);
    const expected: Sample[] = [];
    for (const s of sentences) {
      const sequence = [vocabulary.clsId, ...s.ids.subarray(0, maxLength - 2), vocabulary.sepId];
      const candidates = sequence.map((_, i) => i).filter((i) => !special.has(sequence[i]!));
      if (candidates.length === 0) continue;
      const count = Math.min(maxPredictions, Math.max(1, Math.round(candidates.length * 0.15)));
      const chosen = rng
        .shuffle(candidates)
        .slice(0, count)
        .sort((a, b) => a - b);
      const ids = fitIds(sequence, maxLength, padId);
      const positions = new Float32Array(maxPredictions);
      const label = new Float32Array(2 * maxPredictions);
      chosen.forEach((p, k) => {
        positions[k] = p;
        label[k] = sequence[p]!;
        label[maxPredictions + k] = 1;
        const r = rng.next();
        if (r < 0.8) ids[p] = vocabulary.maskId;
        else if (r < 0.9) ids[p] = randomIds[rng.int(randomIds.length)]!;
      });
      expected.push({ inputs: [ids, positions], label, source: s.source });
    }
    t.true(expected.length > 250, `maxLength ${maxLength}`);
    t.deepEqual(plain(got), plain(expected), `maxLength ${maxLength}, padId ${padId}`);
  }
});

test('next-sentence pairs pack [CLS] ids [SEP] into typed arrays as fitIds did', async (t) => {
  const sentences = randomSentences(300, 3);
  for (const [maxLength, padId] of [
    [16, 0],
    [2, 0],
    [1, 0],
    [9, 7],
  ] as const) {
    const vocabulary = { ...defaultVocabulary(vocabSize), padId };
    const task = createNspTask({ vocabulary, maxLength, poolSize: 20 });
    const got = await lastValueFrom(from(sentences).pipe(task.sampler({ rng: new Rng(4) }), toArray()));
    const pack = (ids: Int32Array): Float32Array =>
      fitIds([vocabulary.clsId, ...ids.subarray(0, maxLength - 2), vocabulary.sepId], maxLength, padId);
    // The sampler as it was, packing with fitIds.
    const rng = new Rng(4);
    const earlier = new EarlierSentences(20, rng);
    const expected: Sample[] = [];
    let previous: TokenizedSentence | undefined;
    for (const sentence of sentences) {
      if (sentence.ids.length === 0) continue;
      if (previous && previous.document !== sentence.document) earlier.endDocument();
      else if (previous && earlier.size > 0) {
        const second = rng.next() < 0.5 ? sentence : earlier.draw()!;
        if (second === sentence || second.document !== previous.document)
          expected.push({
            inputs: [pack(previous.ids), pack(second.ids)],
            label: Float32Array.of(second === sentence ? 1 : 0),
            source: sentence.source,
          });
      }
      earlier.offer(sentence);
      previous = sentence;
    }
    t.true(expected.length > 100, `maxLength ${maxLength}`);
    t.deepEqual(plain(got), plain(expected), `maxLength ${maxLength}, padId ${padId}`);
  }
});
