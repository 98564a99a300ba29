import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processCorpus } from '../../recipes/processCorpus.ts';
import { readShardManifest } from '../../recipes/shards.ts';
import { WordPiece } from '../../text/tokenizers/WordPiece.ts';
import { writeCorpus, writeDailyDialog } from '../cli/_textFixtures.ts';
import { CLI, runCli } from '../cli/_runCli.ts';
import { startNatsServer, type NatsServer } from '../_natsServer.ts';

let dir = '';
let corpus = '';
let dialogues = '';
let tokenizer = '';
let server: NatsServer;
/** Every process a test starts, killed at the end even when a test times out. */
const children: ChildProcess[] = [];

test.before(async () => {
  server = await startNatsServer();
  dir = await mkdtemp(join(tmpdir(), 'tempo-jobs-'));
  corpus = await writeCorpus(dir, 'corpus.txt', 900);
  dialogues = await writeDailyDialog(dir, 'dialogues.txt', 60);
  const tok = await WordPiece.train([await readFile(corpus, 'utf8')], { vocabSize: 120 });
  tokenizer = join(dir, 'tokenizer.json');
  await tok.save(tokenizer);
});
test.after.always(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const args = (out: string): string[] => [
  'process-corpus',
  '--input',
  corpus,
  '--dialogues',
  dialogues,
  '--tasks',
  'nsp,mlm,dialogue-order',
  '--tokenizer',
  tokenizer,
  '--out',
  out,
  '--seed',
  '5',
  '--shard-size',
  '25',
  '--partitions',
  '3',
];

/** Every file of a folder (temp files of a killed writer aside), name -> bytes. */
async function files(folder: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const f of (await readdir(folder)).sort()) if (!f.startsWith('.')) out.set(f, await readFile(join(folder, f)));
  return out;
}

function startWorker(): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'worker', '--queue', server.url, '--ack-wait', '2'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once('exit', () => r()));
}

test('partitions: each partition depends only on its own paragraphs and the seed', async (t) => {
  const a = join(dir, 'p-a');
  const b = join(dir, 'p-b');
  const base = {
    text: [corpus],
    dialogues: [dialogues],
    tasks: ['nsp', 'mlm'] as const,
    tokenizer,
    seed: 5,
    shardSize: 25,
  };
  await processCorpus({ ...base, tasks: [...base.tasks], outDir: a, partitions: 3 });
  await processCorpus({ ...base, tasks: [...base.tasks], outDir: b, partitions: 3 });
  const [fa, fb] = [await files(a), await files(b)];
  t.deepEqual([...fa.keys()], [...fb.keys()]);
  for (const [name, bytes] of fa) t.true(bytes.equals(fb.get(name)!), name);
  const manifest = await readShardManifest(a);
  t.is(manifest.options.partitions, 3);
  t.true(manifest.shards.some((s) => s.file.startsWith('shard-2-of-3-')));
  // Partitions draw different numbers: partition 1's NSP labels are not partition 0's.
  const nsp = (p: number): string =>
    manifest.shards.find((s) => s.file.startsWith(`shard-${p}-of-3-`) && s.task === 'nsp')!.sha256;
  t.not(nsp(0), nsp(1));
});

test.serial(
  '(a) a worker killed mid-job: its job is redelivered and the shards and manifest equal the single-machine run',
  async (t) => {
    const local = join(dir, 'local');
    const queued = join(dir, 'queued');
    const single = await runCli(args(local));
    t.is(single.code, 0, single.stderr);

    const first = startWorker();
    let firstLog = '';
    first.stderr!.on('data', (d: Buffer) => (firstLog += d.toString()));
    const coordinator = spawn(process.execPath, [CLI, ...args(queued), '--queue', server.url, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(coordinator);
    let out = '';
    let err = '';
    coordinator.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    coordinator.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    // Kill the worker as soon as it has written its first shard: in the middle of its first job.
    const deadline = Date.now() + 60_000;
    while (!(existsSync(queued) && (await readdir(queued)).some((f) => /^shard-\d-of-3-\d+\.arrow$/.test(f)))) {
      if (Date.now() > deadline) {
        first.kill('SIGKILL');
        coordinator.kill('SIGKILL');
        throw new Error(`no shard written in 60 s: ${firstLog} ${err}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    first.kill('SIGKILL');
    await exited(first);
    const atKill = await readdir(queued);
    t.false(
      atKill.includes('manifest-0-of-3.json') &&
        atKill.includes('manifest-2-of-3.json') &&
        atKill.includes('manifest.json'),
    );
    const unfinished = atKill.filter((f) => /^manifest-\d-of-3\.json$/.test(f)).length;
    t.true(unfinished <= 3);

    const second = startWorker();
    let secondLog = '';
    second.stderr!.on('data', (d: Buffer) => (secondLog += d.toString()));
    const code = await new Promise<number | null>((r) => coordinator.once('exit', (c) => r(c)));
    second.kill('SIGTERM');
    await exited(second);
    t.is(code, 0, err);
    // The killed job came back (delivery 2) to the second worker.
    t.regex(secondLog, /took job \d of 3 \(run \w+, delivery 2\)/, secondLog);
    const summary = JSON.parse(out.trim().split('\n').pop()!) as { shards: number };
    const [fl, fq] = [await files(local), await files(queued)];
    t.is(summary.shards, (await readShardManifest(local)).shards.length);
    t.deepEqual([...fq.keys()], [...fl.keys()]);
    for (const [name, bytes] of fl) t.true(bytes.equals(fq.get(name)!), `${name} differs`);
  },
);

test.serial('a failed job is reported by the coordinator in one line, not retried', async (t) => {
  const worker = startWorker();
  const bad = await runCli([...args(join(dir, 'bad')), '--queue', server.url, '--input', join(dir, 'missing.txt')]);
  worker.kill('SIGTERM');
  await exited(worker);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^tempo-ssl: .*missing\.txt/m);
});

test.serial('a broker that is not there: one line naming the URL', async (t) => {
  const r = await runCli(['worker', '--queue', 'nats://127.0.0.1:1', '--connect-timeout', '1']);
  t.is(r.code, 1);
  t.regex(r.stderr, /^tempo-ssl: NATS server must be a reachable nats-server/m);
});
