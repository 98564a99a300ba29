import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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
});

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
