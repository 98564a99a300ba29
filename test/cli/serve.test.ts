import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pretrainText } from '../../recipes/pretrainText.ts';
import { loadDialogueScorer } from '../../recipes/scoreDialogues.ts';
import { parseTaskList } from '../../tasks/registry.ts';
import { createScoreServer } from '../../cli/serve.ts';
import { writeDailyDialog } from './_textFixtures.ts';

const CLI = join(import.meta.dirname, '..', '..', 'bin', 'tempo-ssl.js');

let dir = '';
let modelDir = '';
let server: Server;
let base = '';
let model: Awaited<ReturnType<typeof loadDialogueScorer>>;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-serve-'));
  const daily = await writeDailyDialog(dir, 'dialogues.txt', 16);
  modelDir = join(dir, 'run');
  const trained = await pretrainText({
    dialogues: [daily],
    tasks: parseTaskList('dialogue-order'),
    vocabSize: 80,
    taskConfig: { maxLength: 10, embeddingSize: 8 },
    hiddenSize: 8,
    steps: 1,
    batchSize: 4,
    outDir: modelDir,
  });
  trained.encoder.dispose();
  Object.values(trained.heads).forEach((h) => h.dispose());
  model = await loadDialogueScorer(modelDir);
  server = createScoreServer(model, { maxBodyBytes: 4096 });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
test.after.always(async () => {
  server?.close();
  model?.encoder.dispose();
  model?.head.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** One HTTP request on loopback; resolves with the status and the parsed JSON body. */
async function call(
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<{ status: number; body: any }> {
  const response = await fetch(base + path, { method, body: body as BodyInit | undefined, headers });
  return { status: response.status, body: await response.json() };
}

test.serial('POST /score with turns answers a score in [0, 1] and one score per turn', async (t) => {
  const { status, body } = await call(
    'POST',
    '/score',
    JSON.stringify({
      turns: ['Hello , the cat sat .', 'Well , the dog ran home .', 'Well , a bird .', 'Well , bye .'],
    }),
  );
  t.is(status, 200);
  t.true(body.score >= 0 && body.score <= 1);
  t.is(body.turns.length, 4);
});

test.serial('POST /score with dialogues answers each by its id, in order', async (t) => {
  const dialogues = [
    { id: 'x', turns: ['Hello .', 'Well , a cat .', 'Well , bye .'] },
    ['Hi .', 'Bye .'],
    { id: 7, turns: ['One turn .'] },
  ];
  const { status, body } = await call('POST', '/score', JSON.stringify({ dialogues }));
  t.is(status, 200);
  t.deepEqual(
    body.dialogues.map((d: { id: string }) => d.id),
    ['x', '1', '7'],
  );
  t.deepEqual(
    body.dialogues.map((d: { turns: number[] }) => d.turns.length),
    [3, 2, 1],
  );
  t.true(body.dialogues[0].score >= 0 && body.dialogues[0].score <= 1);
});

// issue 10, item 8: 1- and 2-turn dialogues, which have no window of 3 turns, and all-empty turns got scores.
const windowless = test.macro(async (t, turns: string[], reason: RegExp) => {
  const { status, body } = await call('POST', '/score', JSON.stringify({ turns }));
  t.is(status, 200);
  t.is(body.score, null);
  t.deepEqual(
    body.turns,
    turns.map(() => null),
  );
  t.regex(body.reason, reason);
});
test.serial('a 1-turn dialogue is scored null with the reason', windowless, ['Hi .'], /1 turn: a window needs 3/);
test.serial('a 2-turn dialogue is scored null with the reason', windowless, ['Hi .', 'Bye .'], /2 turns/);
test.serial(
  'a dialogue of empty turns is scored null with the reason',
  windowless,
  ['', ' ', ''],
  /every turn is empty/,
);

const refused = test.macro(
  async (t, method: string, path: string, body: string | Buffer | undefined, status: number, message: RegExp) => {
    const answer = await call(method, path, body);
    t.is(answer.status, status);
    t.regex(answer.body.error, message);
    // The server goes on answering after a bad request.
    t.is((await call('GET', '/health')).status, 200);
  },
);

test.serial('bad JSON is 400', refused, 'POST', '/score', '{"turns": [', 400, /not valid JSON/);
test.serial(
  'a wrong shape is 422',
  refused,
  'POST',
  '/score',
  JSON.stringify({ turns: 'hello' }),
  422,
  /turns must be a non-empty array of strings/,
);
test.serial(
  'neither turns nor dialogues is 422',
  refused,
  'POST',
  '/score',
  JSON.stringify([1, 2]),
  422,
  /expected \{"turns"/,
);
test.serial(
  'a bad dialogue in a list is 422 naming it',
  refused,
  'POST',
  '/score',
  JSON.stringify({ dialogues: [['a'], { turns: [] }] }),
  422,
  /dialogues\[1\]\.turns/,
);
test.serial('a wrong method is 405', refused, 'GET', '/score', undefined, 405, /use POST/);
test.serial('an unknown path is 404', refused, 'POST', '/nope', '{}', 404, /no such path \/nope/);
test.serial(
  'a body over the limit is 413',
  refused,
  'POST',
  '/score',
  JSON.stringify({ turns: ['x'.repeat(5000)] }),
  413,
  /over the limit of 4096/,
);

// issue 10, item 1: 10,000 turns in a 50 KB body blocked the server for 53 s.
test.serial('more turns than --max-turns is 413 naming the flag', async (t) => {
  const turns = Array.from({ length: 51 }, () => 'a .');
  const answer = await call('POST', '/score', JSON.stringify({ dialogues: [turns.slice(0, 30), turns.slice(30)] }));
  t.is(answer.status, 413);
  t.regex(answer.body.error, /51 turns; at most 50 a request \(serve --max-turns\)/);
});

test.serial('more characters than --max-chars is 413 naming the flag', async (t) => {
  const strict = createScoreServer(model, { maxChars: 100 });
  strict.listen(0, '127.0.0.1');
  await once(strict, 'listening');
  try {
    const url = `http://127.0.0.1:${(strict.address() as AddressInfo).port}/score`;
    const answer = await fetch(url, {
      method: 'POST',
      body: JSON.stringify({ turns: ['x'.repeat(60), 'y'.repeat(41)] }),
    });
    t.is(answer.status, 413);
    t.regex(((await answer.json()) as { error: string }).error, /101 characters .* at most 100 .*--max-chars/);
  } finally {
    strict.close();
  }
});

// issue 10, item 1: scoring ran on the main thread in one piece, so GET /health waited for it (14 s for 3,000 turns).
test.serial('GET /health is answered while a request just under the turn limit is still scoring', async (t) => {
  let scoring = false;
  let healthAsked: Promise<number> | undefined;
  const slow = createScoreServer(model, {
    maxTurns: 60,
    windowsPerSlice: 1,
    onSlice: (done, total) => {
      scoring = done < total;
      healthAsked ??= fetch(`${slowBase}/health`).then((r) => (t.true(scoring, 'scoring still under way'), r.status));
    },
  });
  slow.listen(0, '127.0.0.1');
  await once(slow, 'listening');
  const slowBase = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`;
  try {
    const turns = Array.from({ length: 60 }, (_, i) => `Turn ${i} , the cat sat .`);
    const scored = await fetch(`${slowBase}/score`, { method: 'POST', body: JSON.stringify({ turns }) });
    t.is(scored.status, 200);
    t.is(((await scored.json()) as { turns: number[] }).turns.length, 60);
    t.is(await healthAsked, 200);
  } finally {
    slow.close();
  }
});

// issue 10, item 6: Node's default request timeout is 300 s, so a slow client held a connection that long.
test.serial('a request not received whole within the request timeout is closed', async (t) => {
  const strict = createScoreServer(model, { requestTimeoutMs: 300 });
  strict.listen(0, '127.0.0.1');
  await once(strict, 'listening');
  try {
    const socket = connect((strict.address() as AddressInfo).port, '127.0.0.1');
    socket.write('POST /score HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"turns"');
    let answer = '';
    socket.on('data', (d) => (answer += String(d)));
    await once(socket, 'close');
    t.regex(answer, /^HTTP\/1.1 408/);
  } finally {
    strict.close();
  }
});

test.serial('a body over the limit sent in chunks without a length is 413 too', async (t) => {
  const { port } = server.address() as AddressInfo;
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/score',
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode!);
      },
    );
    req.on('error', reject);
    for (let i = 0; i < 10; i++) req.write('x'.repeat(1000));
    req.end();
  });
  t.is(status, 413);
  t.is((await call('GET', '/health')).status, 200);
});

test.serial('scoring requests leaks no tensors', async (t) => {
  await call('POST', '/score', JSON.stringify({ turns: ['a .', 'b .', 'c .'] }));
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++)
    await call(
      'POST',
      '/score',
      JSON.stringify({
        dialogues: [
          ['a .', 'b .'],
          ['c .', 'd .', 'e .', 'f .'],
        ],
      }),
    );
  t.is(tf.memory().numTensors, before);
});

test.serial('tempo-ssl serve binds 127.0.0.1 on the port given and answers /score', async (t) => {
  const child = spawn(process.execPath, [CLI, 'serve', '--model', modelDir, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TEMPO_BACKEND: 'cpu' },
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  try {
    const lines = createInterface({ input: child.stdout });
    const [line] = (await Promise.race([
      once(lines, 'line'),
      once(child, 'exit').then(() => [`exited: ${stderr}`]),
    ])) as string[];
    const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line!);
    t.truthy(match, line);
    const response = await fetch(`http://127.0.0.1:${match![1]}/score`, {
      method: 'POST',
      body: JSON.stringify({ turns: ['Hello .', 'Bye .'] }),
    });
    t.is(response.status, 200);
    t.is(((await response.json()) as { turns: number[] }).turns.length, 2);
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
});

// issue 10, item 6: with one slow request in flight, SIGTERM left the process up 38 s.
test.serial(
  'SIGTERM with a slow client in flight exits 0 after the grace period; "listening" is printed once',
  async (t) => {
    const child = spawn(process.execPath, [CLI, 'serve', '--model', modelDir, '--port', '0', '--grace', '300'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TEMPO_BACKEND: 'cpu' },
    });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
    try {
      while (!/listening on .*:(\d+)/.test(stdout) && child.exitCode === null)
        await new Promise((r) => setTimeout(r, 50));
      const port = Number(/listening on .*:(\d+)/.exec(stdout)![1]);
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write('POST /score HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"turns"');
      await new Promise((r) => setTimeout(r, 200));
      child.kill('SIGTERM');
      const [code] = await Promise.race([
        exited,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still up after 10 s')), 10_000)),
      ]);
      t.is(code, 0);
      t.is(stdout.match(/listening on/g)?.length, 1);
      socket.destroy();
    } finally {
      child.kill('SIGKILL');
    }
  },
);
