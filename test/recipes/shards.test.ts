import test from 'ava';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { lastValueFrom, toArray } from 'rxjs';
import { OptionError, StoppedError } from '../../core/errors.ts';
import { buildTextTask, countCorpusTokens, textTaskSamples } from '../../recipes/textTasks.ts';
import { resolveTextTaskConfig } from '../../tasks/text/textTaskConfig.ts';
import { Rng } from '../../core/rng.ts';
import { DataType, tableFromIPC } from 'apache-arrow';
import {
  readShard,
  readShardManifest,
  ShardBuilder,
  shardCapacity,
  shardSamples,
  SHARD_BYTES,
  type ShardManifest,
} from '../../recipes/shards.ts';
import { ShardWriter, writeShardFile } from '../../recipes/shardWriter.ts';
import { processCorpus } from '../../recipes/processCorpus.ts';
import type { ProcessCorpusOptions } from '../../recipes/processCorpus.ts';
import { WordPiece } from '../../text/tokenizers/WordPiece.ts';
import { writeCorpus, writeDailyDialog } from '../cli/_textFixtures.ts';

let dir = '';
let corpus = '';
let dialogues = '';
let tokenizerPath = '';

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-shards-'));
  corpus = await writeCorpus(dir, 'corpus.txt', 60);
  dialogues = await writeDailyDialog(dir, 'dialogues.txt', 30);
  const tokenizer = await WordPiece.train([await readFile(corpus, 'utf8'), await readFile(dialogues, 'utf8')], {
    vocabSize: 120,
  });
  tokenizerPath = join(dir, 'tokenizer.json');
  await tokenizer.save(tokenizerPath);
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

const options = (outDir: string, extra: Partial<ProcessCorpusOptions> = {}): ProcessCorpusOptions => ({
  text: [corpus],
  dialogues: [dialogues],
  tasks: ['nsp', 'mlm', 'skipgram', 'dialogue-order'],
  tokenizer: tokenizerPath,
  outDir,
  seed: 3,
  shardSize: 100,
  taskConfig: { maxLength: 16 },
  ...extra,
});

async function folderBytes(folder: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of (await readdir(folder)).sort()) out[f] = (await readFile(join(folder, f))).toString('base64');
  return out;
}

async function folderHashes(folder: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [f, b64] of Object.entries(await folderBytes(folder)))
    out[f] = createHash('sha256').update(Buffer.from(b64, 'base64')).digest('hex');
  return out;
}

test('the same seed writes the same bytes (sha256 of every file), as Arrow IPC files', async (t) => {
  const a = join(dir, 'det-a');
  const b = join(dir, 'det-b');
  const first = await processCorpus(options(a));
  await processCorpus(options(b));
  t.true(first.manifest.complete);
  t.true(first.manifest.shards.length > 2);
  t.deepEqual(await folderHashes(a), await folderHashes(b));
  for (const shard of first.manifest.shards) {
    const bytes = await readFile(join(a, shard.file));
    t.is(bytes.subarray(0, 6).toString('latin1'), 'ARROW1', shard.file);
    t.is(createHash('sha256').update(bytes).digest('hex'), shard.sha256);
  }
  const other = join(dir, 'det-c');
  await processCorpus(options(other, { seed: 4 }));
  t.notDeepEqual(await folderHashes(a), await folderHashes(other));
});

test('the bytes do not depend on whether the tokenized corpus was kept in memory', async (t) => {
  const kept = join(dir, 'cache-kept');
  const reread = join(dir, 'cache-reread');
  await processCorpus(options(kept));
  await processCorpus(options(reread, { cacheTokens: 0 }));
  t.deepEqual(await folderHashes(kept), await folderHashes(reread));
});

test('the bytes do not depend on the tokenizing and shard-writing threads', async (t) => {
  const threaded = join(dir, 'threads-2');
  const one = join(dir, 'threads-1');
  await processCorpus(options(threaded, { threads: 2 }));
  await processCorpus(options(one, { threads: 1 }));
  t.deepEqual(await folderHashes(threaded), await folderHashes(one));
});

test('a shard written by the shard-writing thread is the file written here, hash and size included', async (t) => {
  const shapes = { inputs: [[1], [3]], label: [3] };
  const fill = (): ShardBuilder => {
    const shard = new ShardBuilder('skipgram', shapes, 50);
    shard.addRows([Uint16Array.of(4, 9), Uint16Array.of(1, 2, 3, 7, 8, 9)], Float32Array.of(1, 0, 0), true, 0, 2, 'a');
    shard.add({ inputs: [Float32Array.of(6), Float32Array.of(1, 1, 1)], label: Float32Array.of(0, 1, 0), source: 'c' });
    return shard;
  };
  const expected = fill().encode();
  t.deepEqual(ShardBuilder.fromParts(fill().parts()).encode(), expected);
  const writer = new ShardWriter();
  try {
    t.true(await writer.ready, 'the thread started');
    const onThread = await writer.write(fill(), join(dir, 'thread.arrow'));
    const here = await writeShardFile(fill(), join(dir, 'here.arrow'));
    t.deepEqual(onThread, here);
    t.deepEqual(new Uint8Array(await readFile(join(dir, 'thread.arrow'))), expected);
    t.is(here.sha256, createHash('sha256').update(expected).digest('hex'));
  } finally {
    writer.close();
  }
});

test('a writer asked to start its thread after 2 shards writes 2 without one, and starts it with the third', async (t) => {
  const shard = (): ShardBuilder => {
    const s = new ShardBuilder('nsp', { inputs: [[2]], label: [1] }, 4);
    s.add({ inputs: [Float32Array.of(1, 2)], label: Float32Array.of(0) });
    return s;
  };
  const writer = new ShardWriter(true, 2);
  let started: boolean | undefined;
  void writer.ready.then((ready) => (started = ready));
  try {
    for (const k of [0, 1]) await writer.write(shard(), join(dir, `later-${k}.arrow`));
    // Time enough for a thread started by those writes to say it is ready (it starts in about 0.1 s).
    await new Promise((resolve) => setTimeout(resolve, 500));
    t.is(started, undefined, 'no thread after two shards');
    await writer.write(shard(), join(dir, 'later-2.arrow'));
    t.true(await writer.ready, 'the third shard started it');
  } finally {
    writer.close();
  }
});

test('without --shard-size a shard holds about 4 MB read back as float32 (74,898 skip-gram rows)', (t) => {
  t.is(shardCapacity(null, { inputs: [[1], [6]], label: [6] }), 74898);
  t.is(shardCapacity(null, { inputs: [[32], [32]], label: [1] }), Math.floor(SHARD_BYTES / (4 * 65 + 4)));
  t.is(shardCapacity(100, { inputs: [[1], [6]], label: [6] }), 100);
});

test('the manifest counts every task and hashes every shard', async (t) => {
  const out = join(dir, 'manifest');
  const { manifest } = await processCorpus(options(out));
  t.deepEqual(Object.keys(manifest.counts), ['nsp', 'mlm', 'skipgram', 'dialogue-order']);
  const total = Object.values(manifest.counts).reduce((a, b) => a + b, 0);
  t.is(
    manifest.shards.reduce((n, s) => n + s.samples, 0),
    total,
  );
  // One task a shard: each task's last shard may be short.
  for (const task of Object.keys(manifest.counts)) {
    const own = manifest.shards.filter((s) => s.task === task);
    t.true(
      own.slice(0, -1).every((s) => s.samples === 100),
      task,
    );
  }
  t.is(manifest.seed, 3);
  t.regex(manifest.tokenizer.sha256, /^[0-9a-f]{64}$/);
  t.deepEqual(manifest.shapes.skipgram, { inputs: [[1], [6]], label: [6] });
  t.true(manifest.shards.every((s) => s.task in manifest.shapes));
  const shard = readShard('first', await readFile(join(out, manifest.shards[0]!.file)));
  t.is(shard.length, 100);
  t.is(shard.task, 'nsp');
  t.deepEqual(shard.shapes, manifest.shapes.nsp);
  t.regex(shard.sample(0).source!, /corpus\.txt:\d+$/);
});

test('samples read back from shards equal the samples made straight from the corpus', async (t) => {
  const out = join(dir, 'readback');
  await processCorpus(options(out));
  const { loadTokenizer } = await import('../../text/tokenizers/loadTokenizer.ts');
  const tokenizer = await loadTokenizer(tokenizerPath);
  const config = resolveTextTaskConfig({ maxLength: 16 });
  // The library path: the same whole-corpus counts that process-corpus takes before sampling skip-grams.
  const counts = await countCorpusTokens(tokenizer, { text: [corpus] });
  for (const [k, name] of (['nsp', 'mlm', 'skipgram', 'dialogue-order'] as const).entries()) {
    const direct = await lastValueFrom(
      textTaskSamples(
        buildTextTask(name, tokenizer, config, counts),
        tokenizer,
        { text: [corpus], dialogues: [dialogues] },
        new Rng(3 * 7919 + k * 104729),
      ).pipe(toArray()),
    );
    const read = await lastValueFrom(shardSamples(out, name).pipe(toArray()));
    t.is(read.length, direct.length, name);
    t.deepEqual(
      read.map((s) => [s.inputs.map((a) => [...a]), [...s.label], s.source]),
      direct.map((s) => [s.inputs.map((a) => [...a]), [...s.label], s.source]),
      name,
    );
  }
});

test('a rerun keeps the shards a killed run finished and ends with the bytes of a clean run', async (t) => {
  const clean = join(dir, 'resume-clean');
  const { manifest } = await processCorpus(options(clean));
  // What a run killed after two shards leaves: those shards, a manifest listing them, a torn temp file.
  const killed = join(dir, 'resume-killed');
  await mkdir(killed);
  const partial: ShardManifest = { ...manifest, complete: false, shards: manifest.shards.slice(0, 2), counts: {} };
  for (const s of partial.shards) await copyFile(join(clean, s.file), join(killed, s.file));
  await copyFile(tokenizerPath, join(killed, 'tokenizer.json'));
  await writeFile(join(killed, 'manifest.json'), JSON.stringify(partial, null, 2));
  await writeFile(join(killed, '.shard-00002.arrow.999.1.tmp'), 'torn');
  const reused: string[] = [];
  const result = await processCorpus({
    ...options(killed),
    onShard: (entry, wasReused) => void (wasReused && reused.push(entry.file)),
  });
  t.deepEqual(reused, [manifest.shards[0]!.file, manifest.shards[1]!.file]);
  t.is(result.written, manifest.shards.length - 2);
  t.deepEqual(await folderBytes(killed), await folderBytes(clean));
});

test('a rerun with other options refuses to mix its shards with the earlier ones', async (t) => {
  const out = join(dir, 'mismatch');
  await processCorpus(options(out, { tasks: ['nsp'] }));
  const error = await t.throwsAsync(processCorpus(options(out, { tasks: ['nsp'], seed: 9 })), {
    instanceOf: OptionError,
  });
  t.regex(error!.message, /--out must be a new folder/);
});

test('workers of --shard i/N split the items and their manifests merge on reading', async (t) => {
  const out = join(dir, 'workers');
  const whole = await processCorpus(options(join(dir, 'workers-whole'), { tasks: ['dialogue-order'] }));
  const parts = [];
  for (const index of [0, 1])
    parts.push(await processCorpus(options(out, { tasks: ['dialogue-order'], shard: { index, count: 2 } })));
  t.true((await readdir(out)).includes('manifest-1-of-2.json'));
  t.true(parts.every((p) => p.manifest.counts['dialogue-order']! > 0));
  const merged = await readShardManifest(out);
  // Each dialogue makes the same number of windows wherever it goes; only the negatives drawn differ.
  t.is(merged.counts['dialogue-order'], whole.manifest.counts['dialogue-order']);
  const read = await lastValueFrom(shardSamples(out, 'dialogue-order').pipe(toArray()));
  t.is(read.length, merged.counts['dialogue-order']);
});

test('bad options are refused before anything is written', async (t) => {
  await t.throwsAsync(processCorpus(options(join(dir, 'bad1'), { shardSize: 0 })), {
    instanceOf: OptionError,
    message: /--shard-size/,
  });
  await t.throwsAsync(processCorpus(options(join(dir, 'bad2'), { dialogues: [], tasks: ['dialogue-order'] })), {
    instanceOf: OptionError,
    message: /--dialogues/,
  });
  await t.throwsAsync(processCorpus(options(join(dir, 'bad3'), { tokenizer: join(dir, 'none.json') })), {
    instanceOf: OptionError,
    message: /--tokenizer/,
  });
  await t.throwsAsync(lastValueFrom(shardSamples(join(dir, 'nothing'), 'nsp')), { message: /no manifest\.json/ });
});

test('a folder of the old gzip JSON-lines format fails with one line naming it and the fix', async (t) => {
  const old = join(dir, 'version-1');
  await mkdir(old);
  await writeFile(join(old, 'manifest.json'), JSON.stringify({ version: 1, complete: true, shards: [], counts: {} }));
  const error = await t.throwsAsync(lastValueFrom(shardSamples(old, 'nsp')));
  t.is(error!.message.split('\n').length, 1);
  t.true(error!.message.includes(join(old, 'manifest.json')));
  t.regex(error!.message, /version 1 \(gzip JSON-lines shards\).*rerun process-corpus/);
  await t.throwsAsync(processCorpus(options(old)), { message: /rerun process-corpus/ });
});

test('a worker reads its part from the kept whole-corpus pass exactly as it would read it alone', async (t) => {
  const shard = { index: 1, count: 3 };
  const kept = join(dir, 'worker-kept');
  const reread = join(dir, 'worker-reread');
  await processCorpus(options(kept, { tasks: ['skipgram', 'nsp'], shard }));
  await processCorpus(options(reread, { tasks: ['skipgram', 'nsp'], shard, cacheTokens: 0 }));
  t.deepEqual(await folderHashes(kept), await folderHashes(reread));
});

/** The Arrow type of each column of a shard file, as another Arrow reader sees it. */
function columnTypes(bytes: Uint8Array): Record<string, string> {
  const table = tableFromIPC(bytes);
  return Object.fromEntries(
    table.schema.fields.map((f) => [
      f.name,
      DataType.isFixedSizeList(f.type) ? String(f.type.valueType) : String(f.type),
    ]),
  );
}

test('columns take the narrowest exact type: ids and 0/1 labels as small integers, other numbers as float32', (t) => {
  const shard = new ShardBuilder('mixed', { inputs: [[2], [2], [1], [1]], label: [2] }, 4);
  const rows = [
    [[0, 200], [0, 60000], [-3], [0.5], [1, 0]],
    [[255, 7], [65535, 1], [100], [2], [0, 1]],
  ];
  for (const [a, b, c, d, label] of rows)
    shard.add({ inputs: [a!, b!, c!, d!].map((v) => Float32Array.from(v)), label: Float32Array.from(label!) });
  const bytes = shard.encode();
  t.deepEqual(columnTypes(bytes), {
    input_0: 'Uint8',
    input_1: 'Uint16',
    input_2: 'Int8',
    input_3: 'Float32',
    label: 'Uint8',
    source: 'Dictionary<Int8, Utf8>',
  });
  const read = readShard('mixed', bytes);
  t.deepEqual(
    [0, 1].map((i) => [...read.sample(i).inputs.map((a) => [...a]), [...read.sample(i).label]]),
    rows,
  );
  t.true(read.sample(0).inputs.every((a) => a instanceof Float32Array));
});

test('rows added as uint16 ids with one shared label keep their type, and a later row with its own label is kept', (t) => {
  const shard = new ShardBuilder('skipgram', { inputs: [[1], [3]], label: [3] }, 5);
  const shared = Float32Array.of(1, 0, 0);
  t.is(shard.addRows([Uint16Array.of(4, 9), Uint16Array.of(1, 2, 3, 7, 8, 9)], shared, true, 0, 2, 'a'), 2);
  t.is(shard.addRows([Uint16Array.of(5), Uint16Array.of(4, 5, 6)], shared, true, 0, 1, 'b'), 1);
  shard.add({ inputs: [Float32Array.of(6), Float32Array.of(1, 1, 1)], label: Float32Array.of(0, 1, 0), source: 'c' });
  const bytes = shard.encode();
  // The float row turned the id columns float, and they narrow again when encoded.
  t.is(columnTypes(bytes).label, 'Uint8');
  const read = readShard('skipgram', bytes);
  t.deepEqual(
    [0, 1, 2, 3].map((i) => {
      const s = read.sample(i);
      return [[...s.inputs[0]!], [...s.inputs[1]!], [...s.label], s.source];
    }),
    [
      [[4], [1, 2, 3], [1, 0, 0], 'a'],
      [[9], [7, 8, 9], [1, 0, 0], 'a'],
      [[5], [4, 5, 6], [1, 0, 0], 'b'],
      [[6], [1, 1, 1], [0, 1, 0], 'c'],
    ],
  );
  const ids = new ShardBuilder('skipgram', { inputs: [[1], [3]], label: [3] }, 2);
  ids.addRows([Uint16Array.of(4, 9), Uint16Array.of(1, 2, 3, 7, 8, 9)], shared, true, 0, 2, 'a');
  t.deepEqual(columnTypes(ids.encode()), {
    input_0: 'Uint16',
    input_1: 'Uint16',
    label: 'Uint8',
    source: 'Dictionary<Int8, Utf8>',
  });
});

test('a version-2 folder (every column float32) is still read', async (t) => {
  const out = join(dir, 'version-2');
  await processCorpus(options(out, { tasks: ['nsp'] }));
  const manifestPath = join(out, 'manifest.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as ShardManifest;
  const expected = await lastValueFrom(shardSamples(out, 'nsp').pipe(toArray()));
  // Rewrite the first shard as version 2 wrote it: float32 columns, int32 dictionary indices.
  const first = join(out, manifest.shards[0]!.file);
  const table = tableFromIPC(await readFile(first));
  const float = (name: string): Float32Array => {
    const v = table.getChild(name)!;
    return Float32Array.from(v.data[0]!.children[0]!.values as ArrayLike<number>);
  };
  const shapes = manifest.shapes.nsp!;
  const widths = shapes.inputs.map((s) => s.reduce((a, b) => a * b, 1));
  const v2 = new ShardBuilder('nsp', shapes, table.numRows);
  const inputs = widths.map((_, k) => float(`input_${k}`));
  const label = float('label');
  for (let i = 0; i < table.numRows; i++) {
    v2.add({
      inputs: inputs.map((flat, k) => flat.slice(i * widths[k]!, (i + 1) * widths[k]!)),
      // A label off by a fraction forces float32, as version 2 wrote every column.
      label: Float32Array.from(label.slice(i, i + 1), (x) => x + 0.25),
      source: String(table.getChild('source')!.get(i)),
    });
  }
  await writeFile(first, v2.encode());
  await writeFile(manifestPath, JSON.stringify({ ...manifest, version: 2 }));
  const read = await lastValueFrom(shardSamples(out, 'nsp').pipe(toArray()));
  t.is(columnTypes(await readFile(first)).label, 'Float32');
  t.deepEqual(
    read.map((s) => [s.inputs.map((a) => [...a]), s.source]),
    expected.map((s) => [s.inputs.map((a) => [...a]), s.source]),
  );
  t.deepEqual(
    read[0]!.label,
    Float32Array.from(expected[0]!.label, (x) => x + 0.25),
  );
});

test('a stop signal during the word2vec count pass ends the run with StoppedError before any shard', async (t) => {
  const out = join(dir, 'stopped-count');
  const controller = new AbortController();
  controller.abort();
  await t.throwsAsync(processCorpus(options(out, { tasks: ['skipgram'], signal: controller.signal })), {
    instanceOf: StoppedError,
    message: /while counting the corpus tokens/,
  });
  t.false((await readdir(out)).some((f) => f.endsWith('.arrow')));
});
