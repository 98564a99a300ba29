import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NoSamplesError, RunFolderError } from '../../core/errors.ts';
import { finishRunFolder, prepareRunFolder, removeDeadCheckpointTemps } from '../../recipes/runFolder.ts';

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-runfolder-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A folder that looks like a finished run: run.json, metrics and a checkpoint. */
async function fakeRun(dir: string, checkpoint = true): Promise<void> {
  await writeFile(join(dir, 'run.json'), '{}');
  await writeFile(join(dir, 'metrics.jsonl'), '{"step":1}\n');
  if (checkpoint) {
    await mkdir(join(dir, 'checkpoint'));
    await writeFile(join(dir, 'checkpoint', 'state.json'), '{}');
  }
}

test('a missing folder and an empty folder are new runs', async (t) => {
  const dir = await tempDir(t);
  t.like(await prepareRunFolder(join(dir, 'new')), { created: true, fresh: true });
  t.like(await prepareRunFolder(dir), { created: false, fresh: true });
});

// issue 10, item 2: pretrain --out <existing run> without --resume replaced a 40-step run with a 5-step one.
test('a folder holding a run is refused without --resume or --force, and left as it was', async (t) => {
  const dir = await tempDir(t);
  await fakeRun(dir);
  const error = await t.throwsAsync(prepareRunFolder(dir), { instanceOf: RunFolderError });
  t.true(error.message.includes(dir));
  t.regex(error.message, /--resume .*--force/);
  t.deepEqual((await readdir(dir)).sort(), ['checkpoint', 'metrics.jsonl', 'run.json']);
});

test('--force clears the run files and keeps what else the folder holds', async (t) => {
  const dir = await tempDir(t);
  await fakeRun(dir);
  await writeFile(join(dir, 'notes.txt'), 'mine');
  t.like(await prepareRunFolder(dir, { force: true }), { fresh: true });
  t.deepEqual(await readdir(dir), ['notes.txt']);
});

const noCheckpoint = test.macro(async (t, setup: (dir: string) => Promise<string>, missing: RegExp) => {
  const dir = await tempDir(t);
  const folder = await setup(dir);
  const error = await t.throwsAsync(prepareRunFolder(folder, { resume: true }), { instanceOf: RunFolderError });
  t.true(error.message.includes(folder));
  t.regex(error.message, missing);
});

// issue 10, item 2: --resume without checkpoint/state.json restarted from step 0 and exited 0.
test(
  '--resume on a run without checkpoint/state.json names the folder and the file',
  noCheckpoint,
  async (dir) => (await fakeRun(dir, false), dir),
  /nothing to resume: checkpoint\/state.json missing/,
);
test(
  '--resume on an empty folder names run.json and the checkpoint',
  noCheckpoint,
  (dir) => Promise.resolve(dir),
  /run.json and checkpoint\/state.json missing/,
);
test(
  '--resume on a missing folder says so',
  noCheckpoint,
  (dir) => Promise.resolve(join(dir, 'nope')),
  /the folder itself missing/,
);

test('--resume on a run with a checkpoint goes on', async (t) => {
  const dir = await tempDir(t);
  await fakeRun(dir);
  t.like(await prepareRunFolder(dir, { resume: true }), { fresh: false });
});

// issue 10, item 8: a kill -9 during a checkpoint write left checkpoint.tmp-<pid>/ that no later run removed.
test('temporary checkpoint folders of dead processes are removed, a live one is kept', async (t) => {
  const dir = await tempDir(t);
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  await mkdir(join(dir, `checkpoint.tmp-${dead}`));
  await mkdir(join(dir, `checkpoint.tmp-${process.pid}`));
  t.deepEqual(await removeDeadCheckpointTemps(dir), [`checkpoint.tmp-${dead}`]);
  t.deepEqual(await readdir(dir), [`checkpoint.tmp-${process.pid}`]);
});

// issue 10, item 5: zero samples printed "pretrained 0 steps", saved an untrained encoder and exited 0.
test('a fresh run that got no sample is an error naming the input and leaves no files', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'run');
  const folder = await prepareRunFolder(out);
  await mkdir(join(out, 'encoder'), { recursive: true });
  await writeFile(join(out, 'run.json'), '{}');
  const error = await t.throwsAsync(
    finishRunFolder(folder, { steps: 0, startStep: 0, stoppedBy: 'data' }, ['empty.txt'], 'frames'),
    { instanceOf: NoSamplesError },
  );
  t.regex(error.message, /no frames .* from empty.txt/);
  t.false(existsSync(out));
});
