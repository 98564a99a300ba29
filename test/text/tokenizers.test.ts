import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { from } from 'rxjs';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { DataFormatError, OptionError } from '../../core/errors.ts';
import { SPECIAL_TOKENS, WordPiece, WordVocab, loadTokenizer, tokenizerFromJson } from '../../text/tokenizers/index.ts';

// A small generated corpus: enough repeated words for merges, a few rare ones for [UNK] and subword splits.
const CORPUS = [
  'The quick brown fox jumps over the lazy dog.',
  'The lazy dog sleeps; the quick fox runs!',
  'Running and jumping are what foxes do, and dogs are sleeping.',
  'Unhappy dogs are not lazy, happy dogs are lazy.',
  'A fox, a dog and a cat walked into a forest.',
  '我喜欢自然语言处理。',
];
const corpus = Array.from({ length: 20 }, () => CORPUS).flat();

let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-tok-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('WordVocab keeps the most frequent words after the five special tokens', async (t) => {
  const vocab = await WordVocab.train(corpus, { maxSize: 12 });
  t.is(vocab.vocabSize, 12);
  t.deepEqual(
    SPECIAL_TOKENS.map((s) => vocab.tokenToId(s)),
    [0, 1, 2, 3, 4],
  );
  t.deepEqual(vocab.tokenize('The LAZY zebra'), ['the', 'lazy', '[UNK]']);
  t.deepEqual(vocab.encode('the', { addSpecialTokens: true }), [2, vocab.tokenToId('the')!, 3]);
  t.is(vocab.decode(vocab.encode('the lazy zebra')), 'the lazy', '[UNK] is special, so decode leaves it out');
  const full = await WordVocab.train(corpus);
  t.is(full.decode(full.encode('The lazy dog sleeps.')), 'the lazy dog sleeps .');
});

test('WordVocab trains from an RxJS stream and drops words under minCount', async (t) => {
  const vocab = await WordVocab.train(from(['a a a b b c']), { minCount: 2 });
  t.is(vocab.vocabSize, 7);
  t.deepEqual(vocab.tokenize('a b c'), ['a', 'b', '[UNK]']);
});

test('WordPiece training puts special tokens at ids 0..4 and reaches the vocabulary size', async (t) => {
  const wp = await WordPiece.train(corpus, { vocabSize: 120 });
  t.deepEqual(
    SPECIAL_TOKENS.map((s) => wp.tokenToId(s)),
    [0, 1, 2, 3, 4],
  );
  t.is(wp.vocabSize, 120);
  t.true(wp.tokenToId('##s') !== undefined, 'continuation pieces carry ##');
});

test('WordPiece encode and decode round-trip normalized text, unseen words included', async (t) => {
  const wp = await WordPiece.train(corpus, { vocabSize: 150 });
  const text = 'The quick dogs jumped over the sleepy foxes!';
  const ids = wp.encode(text);
  t.is(ids[0], wp.clsId!);
  t.is(ids.at(-1), wp.sepId);
  t.false(ids.includes(wp.unkId), 'every letter of the text is in the alphabet');
  t.is(wp.decode(ids), 'the quick dogs jumped over the sleepy foxes!');
  t.deepEqual(wp.tokenize('sleepy').join(' ').replaceAll(' ##', ''), 'sleepy');
  t.deepEqual(wp.tokenize('Zürich'), ['[UNK]']);
});

test('WordPiece splits Chinese into single ideographs', async (t) => {
  const wp = await WordPiece.train(corpus, { vocabSize: 150 });
  t.deepEqual(wp.tokenize('自然语言'), ['自', '然', '语', '言']);
});

test('special tokens in the text are kept whole', async (t) => {
  const wp = await WordPiece.train(corpus, { vocabSize: 200 });
  t.deepEqual(wp.tokenize('the [MASK] dog'), ['the', '[MASK]', 'dog']);
  t.is(wp.decode(wp.encode('the [MASK] dog'), { skipSpecialTokens: false }), '[CLS] the [MASK] dog [SEP]');
});

test('tokenizer.json save then load gives the same JSON and the same ids', async (t) => {
  for (const trained of [await WordPiece.train(corpus, { vocabSize: 120 }), await WordVocab.train(corpus)]) {
    const path = join(dir, `${trained.constructor.name}.json`);
    await trained.save(path);
    const loaded = await loadTokenizer(path);
    t.is(loaded.constructor, trained.constructor);
    t.deepEqual(loaded.toJSON(), trained.toJSON());
    t.deepEqual(JSON.parse(await readFile(path, 'utf8')), trained.toJSON());
    for (const line of CORPUS) t.deepEqual(loaded.encode(line), trained.encode(line));
  }
});

test('the saved tokenizer.json has the Hugging Face schema', async (t) => {
  const json = (await WordPiece.train(corpus, { vocabSize: 100 })).toJSON();
  t.deepEqual(Object.keys(json), [
    'version',
    'truncation',
    'padding',
    'added_tokens',
    'normalizer',
    'pre_tokenizer',
    'post_processor',
    'decoder',
    'model',
  ]);
  t.deepEqual(json.added_tokens[0], {
    id: 0,
    content: '[PAD]',
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  t.deepEqual(Object.keys(json.model), [
    'type',
    'unk_token',
    'continuing_subword_prefix',
    'max_input_chars_per_word',
    'vocab',
  ]);
  t.deepEqual(json.decoder, { type: 'WordPiece', prefix: '##', cleanup: true });
  t.is(json.post_processor?.type, 'TemplateProcessing');
});

test('our saved tokenizer.json gives the same ids in Hugging Face tokenizers.js', async (t) => {
  const wp = await WordPiece.train(corpus, { vocabSize: 150 });
  const hf = new HfTokenizer(wp.toJSON(), {});
  for (const line of [...CORPUS, 'Unseen words: Zürich, naïve café!', 'the [MASK] fox']) {
    t.deepEqual(hf.encode(line).ids, wp.encode(line), line);
  }
});

// Shaped as Python's `tokenizer.save()` writes bert-base-uncased: [unused*] fill ids 1..99, [UNK] is 100.
const unused = Object.fromEntries(Array.from({ length: 99 }, (_, i) => [`[unused${i}]`, i + 1]));
const special = (id: number, content: string) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
});
const BERT_LIKE = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [
    special(0, '[PAD]'),
    special(100, '[UNK]'),
    special(101, '[CLS]'),
    special(102, '[SEP]'),
    special(103, '[MASK]'),
  ],
  normalizer: {
    type: 'BertNormalizer',
    clean_text: true,
    handle_chinese_chars: true,
    strip_accents: null,
    lowercase: true,
  },
  pre_tokenizer: { type: 'BertPreTokenizer' },
  post_processor: {
    type: 'TemplateProcessing',
    single: [
      { SpecialToken: { id: '[CLS]', type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: '[SEP]', type_id: 0 } },
    ],
    pair: [
      { SpecialToken: { id: '[CLS]', type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: '[SEP]', type_id: 0 } },
      { Sequence: { id: 'B', type_id: 1 } },
      { SpecialToken: { id: '[SEP]', type_id: 1 } },
    ],
    special_tokens: {
      '[CLS]': { id: '[CLS]', ids: [101], tokens: ['[CLS]'] },
      '[SEP]': { id: '[SEP]', ids: [102], tokens: ['[SEP]'] },
    },
  },
  decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
  model: {
    type: 'WordPiece',
    unk_token: '[UNK]',
    continuing_subword_prefix: '##',
    max_input_chars_per_word: 100,
    vocab: {
      '[PAD]': 0,
      ...unused,
      '[UNK]': 100,
      '[CLS]': 101,
      '[SEP]': 102,
      '[MASK]': 103,
      ',': 104,
      '.': 105,
      '!': 106,
      "'": 107,
      the: 108,
      un: 109,
      una: 110,
      '##ffa': 111,
      '##ble': 112,
      want: 113,
      '##want': 114,
      '##ed': 115,
      runn: 116,
      '##ing': 117,
      hello: 118,
      world: 119,
      t: 120,
      don: 121,
    },
  },
};

test('a hand-written bert-base-uncased-like tokenizer.json encodes like BERT', async (t) => {
  const path = join(dir, 'bert-like.json');
  await writeFile(path, JSON.stringify(BERT_LIKE, null, 2));
  const bert = await loadTokenizer(path);
  t.true(bert instanceof WordPiece);
  t.deepEqual(bert.tokenize('unaffable'), ['una', '##ffa', '##ble']);
  t.deepEqual(bert.tokenize('UNwant\u00E9d,running'), ['un', '##want', '##ed', ',', 'runn', '##ing']);
  t.deepEqual(bert.encode('Hello, world!'), [101, 118, 104, 119, 106, 102]);
  t.deepEqual(bert.encode('hello', { pair: 'world' }), [101, 118, 102, 119, 102]);
  t.deepEqual(bert.tokenize('hello xyz'), ['hello', '[UNK]']);
  t.deepEqual([bert.padId, bert.unkId, bert.clsId, bert.sepId, bert.maskId], [0, 100, 101, 102, 103]);
  t.is(bert.decode([101, 118, 104, 119, 106, 102]), 'hello, world!');
  t.is(bert.decode([110, 111, 112]), 'unaffable');
  const hf = new HfTokenizer(BERT_LIKE, {});
  for (const text of ['unaffable', 'UNwant\u00E9d,running', "Hello, world! don't"])
    t.deepEqual(bert.encode(text), hf.encode(text).ids, text);
});

test('truncation and fixed padding from tokenizer.json apply on encode', (t) => {
  const bert = tokenizerFromJson({
    ...BERT_LIKE,
    truncation: { direction: 'Right', max_length: 4, strategy: 'LongestFirst', stride: 0 },
    padding: {
      strategy: { Fixed: 6 },
      direction: 'Right',
      pad_to_multiple_of: null,
      pad_id: 0,
      pad_type_id: 0,
      pad_token: '[PAD]',
    },
  });
  t.deepEqual(bert.encode('hello, world!'), [101, 118, 104, 102, 0, 0]);
  t.deepEqual(bert.encodeBatch(['hello', 'the']), [
    [101, 118, 102, 0, 0, 0],
    [101, 108, 102, 0, 0, 0],
  ]);
});

test('a malformed tokenizer.json fails with DataFormatError naming the problem', async (t) => {
  t.throws(() => tokenizerFromJson({ version: '1.0' }, 'x.json'), {
    instanceOf: DataFormatError,
    message: /x\.json: no model\.vocab/,
  });
  t.throws(() => tokenizerFromJson({ ...BERT_LIKE, model: { type: 'BPE', vocab: {}, unk_token: '[UNK]' } }), {
    instanceOf: DataFormatError,
    message: /"BPE" is not supported/,
  });
  t.throws(() => tokenizerFromJson({ ...BERT_LIKE, normalizer: { type: 'Precompiled' } }), {
    instanceOf: DataFormatError,
    message: /normalizer type "Precompiled"/,
  });
  const bad = join(dir, 'bad.json');
  await writeFile(bad, '{ nope');
  await t.throwsAsync(loadTokenizer(bad), { instanceOf: DataFormatError, message: /not valid JSON/ });
});

test('bad training options fail with OptionError', async (t) => {
  await t.throwsAsync(WordPiece.train(corpus, { vocabSize: 3 }), { instanceOf: OptionError, message: /vocabSize/ });
  await t.throwsAsync(WordVocab.train(corpus, { minCount: 0 }), { instanceOf: OptionError, message: /minCount/ });
});
