/**
 * wasm threads in Node, tried for issue 11 (`npm run bench -- wasm-threads`): tfjs turns its threaded wasm module off
 * in Node (tensorflow/tfjs#3830); the shim below ({@link enableWasmThreads}) runs it anyway, XNNPACK's thread pool
 * on worker threads, and the bench times the `train-step` bench with 1 and with N threads, each in a child process
 * (alternating, `--rounds` of each), with a time limit that catches a hung pool.
 *
 * Measured on the 2-core machine (load average below 1), default frame encoder, batch 32, samples/s:
 * - this bench, 6 alternating pairs: 1 thread 278-342 (median 319), 2 threads 331-405 (median 364); 2 threads
 *   ahead in every pair (x1.04 to x1.46), at about 35% more CPU a sample (cpuSamplesPerSecond 193-231 against
 *   256-327);
 * - `train-step` run directly with the shim, 5 and 6 runs: 1 thread 359-414, 2 threads 329-440: no gain there;
 * - per kernel (tf.profile of one step): Conv2D 11.4 -> 6.2 ms, Conv2DBackpropInput 12.2 -> 8.1 ms; the
 *   elementwise kernels, the transposes and tfjs's dispatch stay on one thread;
 * - one threaded run in about fifteen hung (the main thread waiting on the pool, no CPU used).
 * So the shim stays in this bench, not in the backend ladder: a gain of a tenth or so on 2 cores, not steady
 * across ways of running it, and a hang not yet explained. Worth measuring again on a machine with more cores.
 */
import type * as WasmBackend from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { benchTrainStep, type TrainStepRow } from './trainStep.ts';
import type * as WorkerThreads from 'node:worker_threads';

const require = createRequire(import.meta.url);
// The CommonJS exports object (the ESM namespace is read-only): emscripten reads `Worker` from it.
const workerThreads = require('node:worker_threads') as typeof WorkerThreads;

/** A Blob stand-in that is a file: what the emscripten loader gets instead of a blob: URL, which Node cannot run. */
class PathBlob {
  constructor(readonly path: string) {}
}

/**
 * Lets tfjs's threaded wasm module run in Node (tfjs turns it off there, tensorflow/tfjs#3830): XNNPACK's thread
 * pool gets `threads` threads, each a worker thread. Call before the wasm backend starts. What it changes, all for
 * this process:
 * - the pthread worker script is written to a temp file, and `new Blob` / `URL.createObjectURL` hand the loader
 *   file paths for the two scripts it would have put in blob: URLs;
 * - the workers start without this process's `--import` hooks (tsx would try to transform them);
 * - `os.cpus()` reports twice the cores while the module starts, because tfjs caps its pool at
 *   `hardwareConcurrency / 2` (it assumes two hyperthreads a core: one thread on a 2-core machine).
 */
export function enableWasmThreads(wasm: typeof WasmBackend, threads: number): () => void {
  const { wasmWorkerContents } =
    require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as {
      wasmWorkerContents: string;
    };
  const mainScript = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const workerFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'tempo-wasm-threads-')), 'worker.cjs');
  // In the worker the main script arrives as a cloned PathBlob ({path}): its importScripts then reads that file.
  const prelude =
    'const __create = URL.createObjectURL; URL.createObjectURL = (b) => (b && typeof b.path === "string" ? b.path : __create(b));' +
    'const __revoke = URL.revokeObjectURL; URL.revokeObjectURL = (u) => { if (!String(u).startsWith("/")) __revoke(u); };\n';
  // The module's text holds "\n" escapes that its template literal turned into newlines.
  writeFileSync(workerFile, prelude + wasmWorkerContents.replace(/\n/g, '\\n'));

  const Blob = globalThis.Blob;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- a static function of URL, put back as it was
  const createObjectURL = URL.createObjectURL;
  globalThis.Blob = function (parts: BlobPart[], options?: BlobPropertyBag) {
    if (options?.type === 'application/javascript') return new PathBlob(workerFile);
    // The Blob would hold the bundled factory, which leans on its bundle's requires: the emscripten script instead.
    if (options?.type === 'text/javascript') return new PathBlob(mainScript);
    return new Blob(parts, options);
  } as unknown as typeof Blob;
  URL.createObjectURL = ((b: unknown) =>
    b instanceof PathBlob ? b.path : createObjectURL(b as globalThis.Blob)) as typeof URL.createObjectURL;
  const Worker = workerThreads.Worker;
  (workerThreads as { Worker: unknown }).Worker = class extends Worker {
    constructor(file: string | URL, options: WorkerThreads.WorkerOptions = {}) {
      super(file, file === workerFile ? { ...options, execArgv: [] } : options);
    }
  };
  const cpus = os.cpus;
  os.cpus = () => [...cpus(), ...cpus()];
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  // Undoes what only the start needs (the Worker class stays: the pool may grow later).
  return () => {
    globalThis.Blob = Blob;
    URL.createObjectURL = createObjectURL;
    os.cpus = cpus;
  };
}

/** One child run of the bench: the train-step row, or how it ended without one. */
export interface WasmThreadsRow {
  /** Threads asked for. */
  threads: number;
  /** Threads the pool got (wasm's getThreadsCount); 0 when the run gave no row. */
  poolThreads: number;
  samplesPerSecond: number;
  cpuSamplesPerSecond: number;
  /** `ok`, `hung` (no row within the limit) or `failed` (exit code / error line). */
  outcome: string;
}

/** Options of {@link benchWasmThreads}. */
export interface WasmThreadsOptions {
  /** Thread counts to compare. Default [1, 2]. */
  threads?: number[];
  /** Runs of each, alternating. Default 3. */
  rounds?: number;
  /** Seconds a child may take before it counts as hung. Default 180. */
  limitSeconds?: number;
}

const here = fileURLToPath(import.meta.url);

/** Times the train-step bench with each thread count in child processes, alternating. */
export async function benchWasmThreads(options: WasmThreadsOptions = {}): Promise<WasmThreadsRow[]> {
  const { threads = [1, 2], rounds = 3, limitSeconds = 180 } = options;
  const rows: WasmThreadsRow[] = [];
  for (let r = 0; r < rounds; r++) for (const n of threads) rows.push(await runChild(n, limitSeconds));
  return rows;
}

function runChild(threads: number, limitSeconds: number): Promise<WasmThreadsRow> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import=tsx', here, '--child', String(threads)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, limitSeconds * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        const row = JSON.parse(line) as TrainStepRow;
        resolve({
          threads,
          poolThreads: row.threads,
          samplesPerSecond: row.samplesPerSecond,
          cpuSamplesPerSecond: row.cpuSamplesPerSecond,
          outcome: 'ok',
        });
        return;
      }
      const why = hung ? 'hung' : `failed (exit ${code}: ${err.trim().split('\n').pop() ?? ''})`;
      resolve({ threads, poolThreads: 0, samplesPerSecond: 0, cpuSamplesPerSecond: 0, outcome: why });
    });
  });
}

// Child: the shim (when more than one thread), then the train-step bench on wasm; one JSON line.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href && process.argv[2] === '--child') {
  const threads = Number(process.argv[3]);
  const wasm: typeof WasmBackend = await import('@tensorflow/tfjs-backend-wasm');
  const restore = threads > 1 ? enableWasmThreads(wasm, threads) : undefined;
  const [row] = await benchTrainStep({ backend: 'wasm' });
  restore?.();
  process.stdout.write(`${JSON.stringify(row)}\n`);
  // The pool's workers would keep the process alive.
  process.exit(0);
}
