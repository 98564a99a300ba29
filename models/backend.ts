import type * as WasmBackend from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BackendError, OptionError } from '../core/errors.ts';
import { BACKEND_CHOICES, type BackendChoice } from './backendChoices.ts';
import { registerConvFilterGradientViaConv, registerWasmTrainingKernels } from './wasmTrainingKernels.ts';

export { BACKEND_CHOICES, type BackendChoice };

/** Options of {@link selectBackend}. */
export interface BackendOptions {
  /** Which backend to run. Default: env `TEMPO_BACKEND`, else `auto` (the fastest that loads). */
  backend?: BackendChoice;
  /** Where the one line naming the chosen backend goes. Default: stderr. */
  log?: (line: string) => void;
}

/** One rung of the ladder that was tried, with why it failed if it did. */
export interface BackendAttempt {
  /** The rung: `tfjs-node-gpu`, `tfjs-node`, `webgpu`, `wasm` or `cpu`. */
  name: string;
  /** Why the rung could not run; absent for the rung that was chosen. */
  error?: string;
}

/** What {@link selectBackend} chose. */
export interface BackendInfo {
  /** The tfjs backend name now active (`tensorflow`, `webgpu`, `wasm`, `cpu`). */
  name: string;
  /** The chosen rung with its variant, e.g. `wasm (SIMD)` or `tensorflow (CUDA)`. */
  label: string;
  /** Rungs tried in order; the last one is the chosen one. */
  tried: BackendAttempt[];
  /** How to get a faster backend; empty when none is faster. */
  hint: string;
  /** Threads the backend computes with: wasm's thread pool size, 1 for cpu, the cores for tensorflow. */
  threads: number;
}

type Rung = 'tfjs-node-gpu' | 'tfjs-node' | 'webgpu' | 'wasm' | 'cpu';

const RUNGS_OF: Record<BackendChoice, Rung[]> = {
  auto: ['tfjs-node-gpu', 'tfjs-node', 'webgpu', 'wasm', 'cpu'],
  tensorflow: ['tfjs-node-gpu', 'tfjs-node'],
  webgpu: ['webgpu'],
  wasm: ['wasm'],
  cpu: ['cpu'],
};

const GPU_HINT = 'npm install @tensorflow/tfjs-node-gpu (CUDA 11.x + cuDNN 8)';
const CPU_HINT = 'npm install @tensorflow/tfjs-node';

/** How each forced rung is fixed when it cannot load. */
const FIX_OF: Record<Exclude<BackendChoice, 'auto'>, string> = {
  tensorflow: `${GPU_HINT} for NVIDIA GPUs, or ${CPU_HINT} for CPUs; or choose --backend wasm`,
  webgpu:
    'npm install webgpu @tensorflow/tfjs-backend-webgpu and make sure a GPU adapter is visible; or choose --backend wasm',
  wasm: 'reinstall @tensorflow/tfjs-backend-wasm (npm install); or choose --backend cpu',
  cpu: 'reinstall @tensorflow/tfjs (npm install)',
};

// Cached per choice so a second call neither reloads nor logs again; a promise, so concurrent calls share one load.
const chosen = new Map<BackendChoice, Promise<BackendInfo>>();

/**
 * Picks the fastest TensorFlow.js backend that loads here and makes it active, logging exactly one line that names it
 * and how to get a faster one. The `auto` ladder: `@tensorflow/tfjs-node-gpu` (CUDA), `@tensorflow/tfjs-node` (CPU,
 * oneDNN), WebGPU (Dawn via the `webgpu` package, when installed), wasm (XNNPACK, SIMD), plain JS `cpu`.
 * Optional packages that are not installed are skipped quietly. On wasm it also registers the kernels that wasm lacks
 * for training (see {@link registerWasmTrainingKernels}). Calling it again with the same choice returns the same info.
 *
 * @throws BackendError when a forced backend cannot load; the message names it and the fix.
 * @throws OptionError for an unknown choice.
 * @example
 * const info = await selectBackend({ backend: 'wasm', log: () => {} });
 * info.name; // 'wasm'
 */
export async function selectBackend(options: BackendOptions = {}): Promise<BackendInfo> {
  const choice = validateChoice(options);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const cached = chosen.get(choice);
  if (cached) {
    const info = await cached;
    // Someone may have switched backends since (tests do); then select again.
    if (tf.getBackend() === info.name) return info;
    chosen.delete(choice);
  }
  const pending = climbLadder(choice, log);
  chosen.set(choice, pending);
  pending.catch(() => chosen.delete(choice));
  return pending;
}

function validateChoice(options: BackendOptions): BackendChoice {
  const fromEnv = process.env.TEMPO_BACKEND;
  const choice = options.backend ?? (fromEnv === undefined || fromEnv === '' ? 'auto' : fromEnv);
  if (!(BACKEND_CHOICES as readonly string[]).includes(choice)) {
    const option = options.backend === undefined ? 'TEMPO_BACKEND' : 'backend';
    throw new OptionError(option, choice, `one of ${BACKEND_CHOICES.join(', ')}`);
  }
  return choice as BackendChoice;
}

async function climbLadder(choice: BackendChoice, log: (line: string) => void): Promise<BackendInfo> {
  const tried: BackendAttempt[] = [];
  for (const rung of RUNGS_OF[choice]) {
    try {
      const { name, label, threads } = await LOADERS[rung](choice !== 'auto');
      tried.push({ name: rung });
      const hint = hintFor(rung);
      log(`backend: ${label}.${hint ? ` For speed ${hint}` : ''}`);
      return { name, label, tried, hint, threads };
    } catch (error) {
      tried.push({ name: rung, error: firstLine(error) });
    }
  }
  const forced = choice === 'auto' ? 'cpu' : choice;
  const why = tried.map((t) => `${t.name}: ${t.error}`).join('; ');
  throw new BackendError(`backend '${forced}' cannot load (${why}). Fix: ${FIX_OF[forced]}`);
}

function hintFor(rung: Rung): string {
  switch (rung) {
    case 'tfjs-node-gpu':
      return '';
    case 'tfjs-node':
      return `on NVIDIA: ${GPU_HINT}`;
    default:
      return `on NVIDIA: ${GPU_HINT}; on CPU: ${CPU_HINT}`;
  }
}

/** What a loader reports about the backend it activated. */
interface Loaded {
  name: string;
  label: string;
  threads: number;
}

/** Each rung's loader; `forced` is true when the user named this backend rather than `auto`. */
const LOADERS: Record<Rung, (forced: boolean) => Promise<Loaded>> = {
  'tfjs-node-gpu': () => loadTfjsNode('@tensorflow/tfjs-node-gpu', 'CUDA'),
  'tfjs-node': () => loadTfjsNode('@tensorflow/tfjs-node', 'CPU'),
  webgpu: loadWebGpu,
  wasm: loadWasm,
  cpu: async () => {
    await activate('cpu');
    return { name: 'cpu', label: 'cpu (plain JavaScript, slowest)', threads: 1 };
  },
};

/** Imports a module whose name TypeScript must not resolve: optional packages that may be absent. */
function importOptional(specifier: string): Promise<unknown> {
  return import(specifier);
}

async function loadTfjsNode(pkg: string, variant: string): Promise<Loaded> {
  await importOptional(pkg);
  if (!tf.findBackendFactory('tensorflow')) {
    // The package loaded a second copy of tfjs-core, so its backend registered there, not in ours.
    throw new Error(`${pkg} registered no 'tensorflow' backend with this @tensorflow/tfjs; align their versions`);
  }
  await activate('tensorflow');
  // TensorFlow's intra-op pool defaults to one thread per core.
  return { name: 'tensorflow', label: `tensorflow (${variant}, ${pkg})`, threads: os.availableParallelism() };
}

async function loadWebGpu(forced: boolean): Promise<Loaded> {
  // Dawn prints its own warnings when it finds no driver; on a Linux machine with no GPU device node there is nothing
  // to find, so the auto ladder passes by quietly. A forced --backend webgpu always tries.
  if (!forced && !gpuDeviceVisible()) throw new Error('no GPU device node (/dev/nvidia*, /dev/dri/renderD*)');
  const g = globalThis as { navigator?: { gpu?: GpuLike } };
  if (!g.navigator?.gpu) {
    // Node has no navigator.gpu; Dawn's binding (npm `webgpu`) provides one when installed.
    const dawn = (await importOptional('webgpu')) as { create(flags: string[]): GpuLike; globals: object };
    Object.assign(globalThis, dawn.globals);
    const gpu = dawn.create([]);
    if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
    else g.navigator = { gpu };
  }
  const adapter = await g.navigator!.gpu!.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('WebGPU found no GPU adapter (no Vulkan, Metal or D3D12 driver for a GPU here)');
  // The backend registers itself on import only if navigator.gpu exists then; a bundle may have imported it already.
  if (!tf.findBackendFactory('webgpu')) await importOptional('@tensorflow/tfjs-backend-webgpu');
  await activate('webgpu');
  // The stock filter gradient took 10.5 of a step's 13.7 ms of kernel time on an H200; as a forward conv, 1.4.
  registerConvFilterGradientViaConv('webgpu');
  const info = adapter.info ?? {};
  const gpuName = info.description || [info.vendor, info.architecture].filter(Boolean).join(' ') || 'GPU';
  return { name: 'webgpu', label: `webgpu (Dawn, ${gpuName})`, threads: 1 };
}

/** The slice of WebGPU's `navigator.gpu` the loader uses. */
interface GpuLike {
  requestAdapter(options?: object): Promise<{ info?: Record<string, string | undefined> } | null>;
}

/** False only where a GPU surely is absent: Linux with no NVIDIA or DRM render node. Elsewhere WebGPU is asked. */
function gpuDeviceVisible(): boolean {
  if (process.platform !== 'linux') return true;
  const under = (dir: string, prefix: string): boolean => {
    try {
      return fs.readdirSync(dir).some((name) => name.startsWith(prefix));
    } catch {
      return false;
    }
  };
  return under('/dev', 'nvidia') || under('/dev/dri', 'renderD');
}

async function loadWasm(): Promise<Loaded> {
  const wasm: typeof WasmBackend = await import('@tensorflow/tfjs-backend-wasm');
  if (!wasmPathsSet) {
    // In Node the emscripten loader looks for the .wasm files beside its own script, which is not where they ship.
    const dist = path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
    wasm.setWasmPaths(`${dist}${path.sep}`);
    wasmPathsSet = true;
  }
  await activate('wasm');
  registerWasmTrainingKernels();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = wasm.getThreadsCount();
  const variant = [simd ? 'SIMD' : 'no SIMD', threads > 1 ? `${threads} threads` : ''].filter(Boolean).join(', ');
  return { name: 'wasm', label: `wasm (${variant})`, threads };
}
let wasmPathsSet = false;

/** Makes `name` active and checks that an op really runs on it (a backend can register yet fail on first use). */
async function activate(name: string): Promise<void> {
  if (!tf.findBackendFactory(name)) throw new Error(`no '${name}' backend is registered`);
  if (!(await tf.setBackend(name))) throw new Error(`backend '${name}' failed to initialise`);
  const probe = tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)));
  const value = (await probe.data())[0];
  probe.dispose();
  if (value !== 3) throw new Error(`backend '${name}' computed 1 + 2 = ${value}`);
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0].slice(0, 300);
}
