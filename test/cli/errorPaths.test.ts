import { runCli } from './_runCli.ts';
/**
 * issue 10: every command's error paths through the CLI (bin/tempo-ssl.js). Each case must exit 1 with exactly one
 * line of its own (`tempo-ssl: ...`), no stack trace and no control bytes, and name what the issue asked for.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generateLabelledClips } from '../../fixtures/syntheticVideos.ts';
import { WordPiece } from '../../text/tokenizers/WordPiece.ts';
import { writeCorpus } from './_textFixtures.ts';

const run = promisify(execFile);

/** Runs the CLI to completion (see `runCli`). */
const cli = (args: string[]) => runCli(args, 'wasm');

let dir = '';
let clip = '';
let corpus = '';
let tokenizer = '';
let videoRun = '';
const tiny = ['--steps', '2', '--batch', '2', '--max-length', '8', '--feature-size', '8'];

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-errors-'));
  const { clips } = await generateLabelledClips({
    dir: join(dir, 'clips'),
    seed: 2,
    count: 1,
    width: 16,
    height: 16,
    frames: 12,
  });
  clip = clips[0]!.path;
  await writeFile(join(dir, 'empty.txt'), '');
  corpus = await writeCorpus(dir, 'corpus.txt', 12);
  const trained = await WordPiece.train([await readFile(corpus, 'utf8')], { vocabSize: 80 });
  tokenizer = join(dir, 'tokenizer.json');
  await trained.save(tokenizer);
  videoRun = join(dir, 'video-run');
  const made = await cli([
    'pretrain',
    '--video',
    clip,
    '--width',
    '16',
    '--height',
    '16',
    '--feature-size',
    '8',
    '--steps',
    '1',
    '--batch',
    '2',
    '--out',
    videoRun,
    '--json',
  ]);
  if (made.code !== 0) throw new Error(made.stderr);
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

/** Runs the CLI, expects exit 1 with one line of its own matching `message`, and returns that line. */
const fails = test.macro(async (t, args: () => Promise<string[]> | string[], message: RegExp, notMessage?: RegExp) => {
  const result = await cli(await args());
  t.is(result.code, 1, result.stderr);
  const own = result.stderr.split('\n').filter((l) => l.startsWith('tempo-ssl:'));
  t.is(own.length, 1, result.stderr);
  t.regex(own[0] ?? '', message);
  if (notMessage) t.notRegex(own[0] ?? '', notMessage);
  t.notRegex(result.stderr, /\n\s+at /, 'no stack trace without --verbose');
  // eslint-disable-next-line no-control-regex -- what must not be printed
  t.notRegex(result.stderr, /[\u0000-\u0008\u000b-\u001a\u001c-\u001f]/, 'no raw control bytes');
  t.true(result.stderr.length < 2000, `${result.stderr.length} bytes of stderr`);
});

// Item 5: zero frames or samples.
test(
  'frames on an empty file is an error naming it',
  fails,
  () => ['frames', join(dir, 'empty.txt')],
  /empty\.txt is empty \(0 bytes\)/,
);
test('pretrain --video on an empty file is an error naming it, and leaves no run folder', async (t) => {
  const out = join(dir, 'empty-run');
  const result = await cli([
    'pretrain',
    '--video',
    join(dir, 'empty.txt'),
    '--out',
    out,
    '--steps',
    '2',
    '--batch',
    '2',
    '--width',
    '16',
    '--height',
    '16',
  ]);
  t.is(result.code, 1, result.stderr);
  t.regex(result.stderr, /tempo-ssl: no frames .*from .*empty\.txt/);
  t.false(existsSync(out));
});
test(
  'pretrain --video on a PNG named .mp4 is an error naming it',
  fails,
  async () => {
    const png = join(dir, 'image.mp4');
    const { resolveFfmpegPath } = await import('../../pipeline/ffmpegPaths.ts');
    await run(resolveFfmpegPath(), [
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      'color=c=red:s=16x16',
      '-frames:v',
      '1',
      '-f',
      'image2',
      '-c:v',
      'png',
      png,
    ]);
    return [
      'pretrain',
      '--video',
      png,
      '--out',
      join(dir, 'png-run'),
      '--steps',
      '2',
      '--batch',
      '2',
      '--width',
      '16',
      '--height',
      '16',
    ];
  },
  /no frames .*image\.mp4/,
);
test(
  'pretrain --text with one sentence has no NSP pair: an error naming the input',
  fails,
  async () => {
    const one = join(dir, 'one.txt');
    await writeFile(one, 'Only one sentence here.\n');
    return [
      'pretrain',
      '--text',
      one,
      '--tasks',
      'nsp',
      '--tokenizer',
      tokenizer,
      '--out',
      join(dir, 'one-run'),
      ...tiny,
    ];
  },
  /no text samples .*one\.txt/,
);
test('embed of an empty file is an error and leaves no output file', async (t) => {
  const out = join(dir, 'none.jsonl');
  const result = await cli(['embed', '--model', videoRun, '--video', join(dir, 'empty.txt'), '--out', out]);
  t.is(result.code, 1, result.stderr);
  t.regex(result.stderr, /tempo-ssl: no frames to embed .*from .*empty\.txt/);
  t.false(existsSync(out));
  t.deepEqual(
    (await readdir(dir)).filter((f) => f.includes('none.jsonl')),
    [],
    'no temp file left',
  );
});

// Item 7: embed output paths.
test(
  'embed --out at a folder is one line naming it',
  fails,
  () => ['embed', '--model', videoRun, '--video', clip, '--out', dir],
  /--out must be a file path \(it is a folder\)/,
);
test(
  'embed --out under a missing folder is one line naming it',
  fails,
  () => ['embed', '--model', videoRun, '--video', clip, '--out', join(dir, 'no', 'such', 'e.jsonl')],
  /does not exist/,
);
test('embed writes its output whole, through a temp file', async (t) => {
  const out = join(dir, 'e.jsonl');
  const result = await cli(['embed', '--model', videoRun, '--video', clip, '--out', out]);
  t.is(result.code, 0, result.stderr);
  t.is((await readFile(out, 'utf8')).trim().split('\n').length, 12);
  t.deepEqual(
    (await readdir(dir)).filter((f) => f.startsWith('.e.jsonl.')),
    [],
  );
});

// Item 2: run folders.
test('pretrain into an existing run without --resume is refused and the run is left as it was', async (t) => {
  const before = await stat(join(videoRun, 'metrics.jsonl'));
  const result = await cli([
    'pretrain',
    '--video',
    clip,
    '--width',
    '16',
    '--height',
    '16',
    '--steps',
    '1',
    '--batch',
    '2',
    '--out',
    videoRun,
  ]);
  t.is(result.code, 1, result.stderr);
  t.regex(result.stderr, /run folder .*video-run: not empty .*--resume .*--force/);
  t.is((await stat(join(videoRun, 'metrics.jsonl'))).mtimeMs, before.mtimeMs);
});
test(
  '--resume without a checkpoint names the folder and the missing file',
  fails,
  async () => {
    const out = join(dir, 'half-run');
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'run.json'), '{}');
    return ['pretrain', '--text', corpus, '--tokenizer', tokenizer, '--out', out, '--resume', ...tiny];
  },
  /half-run: nothing to resume: checkpoint\/state\.json missing/,
);

// Item 3: divergence.
test(
  '--lr 1e308 stops the run with an error naming the step and the learning rate',
  fails,
  () => [
    'pretrain',
    '--text',
    corpus,
    '--tokenizer',
    tokenizer,
    '--lr',
    '1e308',
    '--out',
    join(dir, 'lr-run'),
    ...tiny,
  ],
  /diverged at step 1: .*learning rate 1e\+308/,
);

// Item 8: tokenizers and messages.
test(
  'a tokenizer id past the vocabulary is named with its file',
  fails,
  async () => {
    const json = JSON.parse(await readFile(tokenizer, 'utf8'));
    json.model.vocab.hello = 1e9;
    const bad = join(dir, 'bad-id.json');
    await writeFile(bad, JSON.stringify(json));
    return ['pretrain', '--text', corpus, '--tokenizer', bad, '--out', join(dir, 'bad-id-run'), ...tiny];
  },
  /bad-id\.json: token "hello" has id 1000000000, past the vocabulary/,
);
test(
  'a tokenizer with an empty vocabulary is refused naming its file',
  fails,
  async () => {
    const json = JSON.parse(await readFile(tokenizer, 'utf8'));
    json.model.vocab = {};
    json.added_tokens = [];
    const bad = join(dir, 'empty-vocab.json');
    await writeFile(bad, JSON.stringify(json));
    return ['pretrain', '--text', corpus, '--tokenizer', bad, '--out', join(dir, 'empty-vocab-run'), ...tiny];
  },
  /empty-vocab\.json: model\.vocab is empty/,
);
test(
  'a binary --tokenizer is named without printing its bytes',
  fails,
  async () => {
    const bin = join(dir, 'tok.png');
    await writeFile(
      bin,
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x1b, 0x5b, 0x33, 0x31, 0x6d]),
    );
    return ['pretrain', '--text', corpus, '--tokenizer', bin, '--out', join(dir, 'bin-tok-run'), ...tiny];
  },
  /tok\.png: looks binary/,
);
test(
  'a folder given to frames is not told to re-encode it',
  fails,
  () => ['frames', dir],
  /is a folder, not a video/,
  /re-encode/,
);
test(
  'a refused TCP connection is not told to re-encode it',
  fails,
  async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    return ['frames', `tcp://127.0.0.1:${port}`];
  },
  /connection refused/,
  /re-encode/,
);
test(
  'a 16384x16384 frame size is named as too large, not re-encode',
  fails,
  () => ['frames', clip, '--width', '16384', '--height', '16384'],
  /frame size 16384x16384 is too large/,
  /re-encode/,
);
test(
  'a missing --labels says it is missing, not "got undefined"',
  fails,
  () => ['probe', '--model', videoRun, '--images', join(dir, 'x.idx')],
  /--labels is missing/,
  /undefined/,
);
test(
  'invalid UTF-8 hints at --on-invalid skip',
  fails,
  async () => {
    const bad = join(dir, 'latin1.txt');
    await writeFile(bad, Buffer.concat([Buffer.from('Good line.\n'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a])]));
    return ['pretrain', '--text', bad, '--out', join(dir, 'latin1-run'), ...tiny];
  },
  /--on-invalid skip/,
  /onInvalid/,
);
test('--on-invalid skip counts each invalid line once', async (t) => {
  const bad = join(dir, 'three-bad.txt');
  const good = (await readFile(corpus)).subarray(0, 2000);
  const invalid = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x0a]);
  await writeFile(bad, Buffer.concat([invalid, good, Buffer.from('\n'), invalid, invalid]));
  const result = await cli([
    'pretrain',
    '--text',
    bad,
    '--vocab-size',
    '60',
    '--on-invalid',
    'skip',
    '--out',
    join(dir, 'skip-run'),
    ...tiny,
    '--json',
  ]);
  t.is(result.code, 0, result.stderr);
  t.deepEqual(JSON.parse(result.stdout).skipped, { 'invalid-utf8': 3 });
});
