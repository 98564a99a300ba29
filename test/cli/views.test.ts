import { runCli } from './_runCli.ts';
/**
 * issue 9: multi-view TCN through the CLI: `pretrain --views cam1,cam2,...` (repeatable, one group a recording)
 * trains on synchronized cameras, `evaluate` and `embed` take the run folder, single-view tcn trains on plain
 * videos, and bad groups fail with one line naming the input and the fix.
 */
import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { generateEdgeCaseVideos } from '../../fixtures/edgeCaseVideos.ts';
import { generateSyncedViews, type SyncedViewGroup } from '../../fixtures/syncedViews.ts';
import { generateLabelledClips } from '../../fixtures/syntheticVideos.ts';

const cli = (args: string[]) => runCli(args, 'wasm');
const small = ['--width', '32', '--height', '32', '--batch', '4', '--feature-size', '16'];

let dir = '';
let groups: SyncedViewGroup[] = [];
let positionsFile = '';

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-cli-views-'));
  ({ groups, positionsFile } = await generateSyncedViews({
    dir: join(dir, 'views'),
    seed: 3,
    recordings: 2,
    frames: 24,
  }));
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

/** The one line an error prints, with the exit code checked. */
function oneLine(t: { is: (a: unknown, b: unknown, m?: string) => void }, result: { code: number; stderr: string }) {
  t.is(result.code, 1, result.stderr);
  const lines = result.stderr.split('\n').filter((l) => l.startsWith('tempo-ssl: '));
  t.is(lines.length, 1, result.stderr);
  return lines[0] ?? '';
}

test.serial('pretrain --views trains tcn on synchronized cameras; evaluate and embed take the run', async (t) => {
  const out = join(dir, 'run-views');
  // One group as files (three cameras, one at another size and rate), one as the folder of its cameras.
  const result = await cli([
    'pretrain',
    '--views',
    groups[0]!.files.join(','),
    '--views',
    dirname(groups[1]!.files[0]!),
    '--tasks',
    'tcn',
    '--steps',
    '4',
    ...small,
    '--out',
    out,
    '--json',
  ]);
  t.is(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout);
  t.is(summary.steps, 4);
  t.true(Number.isFinite(summary.last.tasks.tcn.loss));
  const run = JSON.parse(await readFile(join(out, 'run.json'), 'utf8'));
  t.deepEqual(run.viewGroups, [groups[0]!.files, groups[1]!.files]);
  t.deepEqual(run.videos, [...groups[0]!.files, ...groups[1]!.files]);

  const embeddings = join(dir, 'embeddings.jsonl');
  const embedded = await cli(['embed', '--model', out, '--video', groups[1]!.files[2]!, '--out', embeddings]);
  t.is(embedded.code, 0, embedded.stderr);
  const lines = (await readFile(embeddings, 'utf8')).trim().split('\n');
  // Camera 2 films at half the rate: 12 frames; the embedding is the encoder's 16 features.
  t.is(lines.length, 12);
  t.is(JSON.parse(lines[0]!).embedding.length, 16);

  const evaluated = await cli([
    'evaluate',
    '--model',
    out,
    '--train',
    positionsFile,
    '--epochs',
    '1',
    '--few-label-steps',
    '3',
    '--labels-per-class',
    '2',
    '--json',
  ]);
  t.is(evaluated.code, 0, evaluated.stderr);
  const report = JSON.parse(evaluated.stdout);
  for (const protocol of ['linear', 'knn'])
    for (const value of Object.values(report.protocols[protocol]) as number[])
      t.true(Number.isFinite(value) && value >= 0 && value <= 1, `${protocol} ${value}`);
});

test.serial('pretrain --video with tcn trains single-view TCN', async (t) => {
  const { clips } = await generateLabelledClips({ dir: join(dir, 'clips'), seed: 2, count: 2, frames: 24 });
  const out = join(dir, 'run-single');
  const result = await cli([
    'pretrain',
    '--video',
    ...clips.map((c) => c.path),
    '--tasks',
    'tcn',
    '--steps',
    '3',
    ...small,
    '--out',
    out,
    '--json',
  ]);
  t.is(result.code, 0, result.stderr);
  t.is(JSON.parse(result.stdout).steps, 3);
  t.is(JSON.parse(await readFile(join(out, 'run.json'), 'utf8')).viewGroups, undefined);
});

test('a --views group of one file fails naming it and the fix', async (t) => {
  const line = oneLine(t, await cli(['pretrain', '--views', groups[0]!.files[0]!, '--out', join(dir, 'e1')]));
  t.regex(
    line,
    /--views must be two or more synchronized camera files .* e\.g\. --views cam1\.mp4,cam2\.mp4.*cam0\.mp4/,
  );
});

test('an unreadable camera fails naming the file', async (t) => {
  const edge = await generateEdgeCaseVideos(join(dir, 'edge'));
  const line = oneLine(
    t,
    await cli(['pretrain', '--views', `${groups[0]!.files[0]!},${edge.notAVideo}`, '--out', join(dir, 'e2')]),
  );
  t.regex(line, /cannot decode video .*not-a-video\.mp4.*re-encode it/);
});

test('cameras of different lengths fail naming both and the fix', async (t) => {
  const long = await generateSyncedViews({ dir: join(dir, 'long'), seed: 4, frames: 96 });
  const line = oneLine(
    t,
    await cli([
      'pretrain',
      '--views',
      `${groups[0]!.files[0]!},${long.groups[0]!.files[1]!}`,
      '--out',
      join(dir, 'e3'),
    ]),
  );
  t.regex(line, /one synchronized recording, of about one length .*lasts 2\.0 s.* 8\.0 s\): trim them/);
});

test('--views with --video, or with a task that reads text, is refused', async (t) => {
  const both = oneLine(
    t,
    await cli([
      'pretrain',
      '--views',
      groups[0]!.files.join(','),
      '--video',
      groups[0]!.files[0]!,
      '--out',
      join(dir, 'e4'),
    ]),
  );
  t.regex(both, /exactly one source.*got "--video and --views"/);
  const text = oneLine(
    t,
    await cli(['pretrain', '--views', groups[0]!.files.join(','), '--tasks', 'nsp', '--out', join(dir, 'e5')]),
  );
  t.regex(text, /--tasks must be one of order, frame-sim, tcn/);
});
