// `npx tsx bench/serve.ts --model runs/dlg`: the Done-when figures of issue 10 for `serve`, printed as JSON.
// A 10,000-turn request (refused past --max-turns) and GET /health latency meanwhile; a request at the turn limit
// and /health meanwhile; RSS over a burst of 300 requests; SIGTERM with a slow client in flight. Loopback only.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

const model = process.argv[process.argv.indexOf('--model') + 1] ?? 'runs/dlg';
const CLI = join(import.meta.dirname, '..', 'bin', 'tempo-ssl.js');
const GRACE_MS = 2000;

const child = spawn(process.execPath, [CLI, 'serve', '--model', model, '--port', '0', '--grace', String(GRACE_MS)], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
let stdout = '';
child.stdout.on('data', (d) => (stdout += String(d)));
while (!/listening on (\S+)/.test(stdout)) {
  if (child.exitCode !== null) throw new Error(`serve exited: ${stdout}`);
  await new Promise((r) => setTimeout(r, 50));
}
const base = /listening on (\S+)/.exec(stdout)![1]!;
const rssMb = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;

const dialogue = (turns: number) => Array.from({ length: turns }, (_, i) => `This is turn ${i} , how are you today ?`);
async function score(turns: number): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  const r = await fetch(`${base}/score`, { method: 'POST', body: JSON.stringify({ turns: dialogue(turns) }) });
  await r.arrayBuffer();
  return { status: r.status, ms: Math.round(performance.now() - t0) };
}
/** Polls GET /health every 10 ms while `work` runs; the largest latency seen. */
async function healthDuring<T>(work: Promise<T>): Promise<{ result: T; maxHealthMs: number; polls: number }> {
  let done = false;
  let maxHealthMs = 0;
  let polls = 0;
  const poll = (async () => {
    while (!done) {
      const t0 = performance.now();
      await (await fetch(`${base}/health`)).arrayBuffer();
      maxHealthMs = Math.max(maxHealthMs, performance.now() - t0);
      polls++;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const result = await work;
  done = true;
  await poll;
  return { result, maxHealthMs: Math.round(maxHealthMs), polls };
}

await score(10); // warm-up: the first call compiles the wasm kernels
const rssStart = rssMb();
const refused = await healthDuring(score(10_000));
const atLimit = await healthDuring(score(50));

let peak = rssStart;
const sampler = setInterval(() => (peak = Math.max(peak, rssMb())), 50);
const t0 = performance.now();
const burst = await Promise.all(Array.from({ length: 300 }, (_, i) => score(3 + (i % 8))));
const burstMs = Math.round(performance.now() - t0);
clearInterval(sampler);
await new Promise((r) => setTimeout(r, 2000));
const rssAfter = rssMb();

// A slow client: headers and part of the body, then nothing.
const socket = connect(Number(new URL(base).port), '127.0.0.1');
socket.on('error', () => {});
socket.write('POST /score HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{"turns": ["a');
await new Promise((r) => setTimeout(r, 300));
const t1 = performance.now();
child.kill('SIGTERM');
const [code] = (await once(child, 'exit')) as [number | null];
socket.destroy();

console.log(
  JSON.stringify(
    {
      request10000Turns: { status: refused.result.status, ms: refused.result.ms, maxHealthMs: refused.maxHealthMs },
      requestAtLimit50Turns: {
        status: atLimit.result.status,
        ms: atLimit.result.ms,
        maxHealthMs: atLimit.maxHealthMs,
        healthPolls: atLimit.polls,
      },
      burst300: {
        statuses: [...new Set(burst.map((b) => b.status))],
        ms: burstMs,
        rssStartMb: Math.round(rssStart),
        rssPeakMb: Math.round(peak),
        rssAfterMb: Math.round(rssAfter),
      },
      sigtermWithSlowClient: { exitMs: Math.round(performance.now() - t1), code, graceMs: GRACE_MS },
    },
    null,
    2,
  ),
);
