import type * as WasmBackend from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { BackendError, OptionError } from '../core/errors.ts';

/** A backend choice: `auto` walks the ladder from fastest to slowest; the others force one rung. */
export type BackendChoice = 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

/** The choices {@link selectBackend} accepts, in ladder order after `auto`. */
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

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
      const { name, label, threads } = await LOADERS[rung]();
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

const LOADERS: Record<Rung, () => Promise<Loaded>> = {
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

async function loadWebGpu(): Promise<Loaded> {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (!g.navigator?.gpu) {
    // Node has no navigator.gpu; Dawn's binding (npm `webgpu`) provides one when installed.
    const dawn = (await importOptional('webgpu')) as { create(flags: string[]): unknown; globals: object };
    Object.assign(globalThis, dawn.globals);
    const gpu = dawn.create([]);
    if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
    else g.navigator = { gpu };
  }
  await importOptional('@tensorflow/tfjs-backend-webgpu');
  await activate('webgpu');
  return { name: 'webgpu', label: 'webgpu (Dawn)', threads: 1 };
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

/**
 * Registers, for the wasm backend, the training kernels that tfjs-backend-wasm 4.22 lacks or gets wrong:
 * - `Conv2DBackpropFilter` (missing): the filter gradient of every conv2d, fused or not.
 * - `MaxPoolGrad` (wrong): wasm's routes no gradient from a pooling window whose maximum is <= 0 (its running max
 *   seems to start at FLT_MIN, not -inf); replaced by an exact JS loop with cpu's tie-breaking.
 * Idempotent. Kernels are registered per backend, so cpu/tensorflow/webgpu are untouched.
 *
 * Why kernels, not a replacement gradient for `Conv2D`: `tf.fused.conv2d` (what `tf.layers.conv2d` runs) computes
 * its filter gradient in its own customGrad, calling the kernel directly, so only a kernel covers both paths.
 */
export function registerWasmTrainingKernels(): void {
  for (const config of [conv2DBackpropFilterViaConv('wasm'), maxPoolGradInJs('wasm')]) {
    const existing = tf.getKernel(config.kernelName, config.backendName);
    if (existing && (existing as { ours?: boolean }).ours) continue;
    if (existing) tf.unregisterKernel(config.kernelName, config.backendName);
    tf.registerKernel({ ...config, ours: true } as tf.KernelConfig);
  }
}

/**
 * `MaxPoolGrad` as a plain loop: each output cell sends its dy to the first maximum of its window (row-major, strict
 * `>`), as the cpu backend does. Pool windows are small, so this costs about as much as the forward pool.
 */
function maxPoolGradInJs(backendName: string): tf.KernelConfig {
  return {
    kernelName: 'MaxPoolGrad',
    backendName,
    kernelFunc: ({ inputs, backend: anyBackend, attrs }) => {
      const backend = anyBackend as tf.KernelBackend;
      const { dy, input } = inputs as unknown as { dy: tf.TensorInfo; input: tf.TensorInfo };
      const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;
      const info = tf.backend_util.computePool2DInfo(
        input.shape as [number, number, number, number],
        filterSize,
        strides,
        1,
        pad,
        dimRoundingMode,
      );
      const x = backend.readSync(input.dataId) as Float32Array;
      const dyValues = backend.readSync(dy.dataId) as Float32Array;
      const dx = new Float32Array(x.length);
      const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth } = info;
      const { effectiveFilterHeight: fh, effectiveFilterWidth: fw, dilationHeight, dilationWidth } = info;
      const { top, left } = info.padInfo;
      for (let n = 0; n < batchSize; n++) {
        for (let oy = 0; oy < outHeight; oy++) {
          for (let ox = 0; ox < outWidth; ox++) {
            for (let ch = 0; ch < inChannels; ch++) {
              let best = -Infinity;
              let at = -1;
              for (let ky = 0; ky < fh; ky += dilationHeight) {
                const y = oy * strideHeight - top + ky;
                if (y < 0 || y >= inHeight) continue;
                for (let kx = 0; kx < fw; kx += dilationWidth) {
                  const xx = ox * strideWidth - left + kx;
                  if (xx < 0 || xx >= inWidth) continue;
                  const index = ((n * inHeight + y) * inWidth + xx) * inChannels + ch;
                  if (x[index] > best || at < 0) {
                    best = x[index];
                    at = index;
                  }
                }
              }
              if (at >= 0) dx[at] += dyValues[((n * outHeight + oy) * outWidth + ox) * inChannels + ch];
            }
          }
        }
      }
      return { dataId: backend.write(dx, input.shape, 'float32'), shape: input.shape, dtype: 'float32' };
    },
  };
}

/**
 * `Conv2DBackpropFilter` built from the backend's own PadV2, Transpose, Conv2D and Slice kernels.
 *
 * dW[i, j, c, f] = sum over n, oh, ow of xPadded[n, i + s*oh, j + s*ow, c] * dy[n, oh, ow, f], which is a stride-1
 * conv with dilation s of xPadded seen as `[C, Hp, Wp, N]` (batch C, channels N) by dy seen as a filter
 * `[OH, OW, N, F]`; its output is `[C, >=KH, >=KW, F]`, cropped to `[C, KH, KW, F]` and transposed to
 * `[KH, KW, C, F]`. This runs on XNNPACK's conv, about 20x faster on wasm than im2col + matMul(transposeA).
 */
function conv2DBackpropFilterViaConv(backendName: string): tf.KernelConfig {
  return {
    kernelName: 'Conv2DBackpropFilter',
    backendName,
    kernelFunc: ({ inputs, backend: anyBackend, attrs }) => {
      const { x, dy } = inputs as unknown as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const backend = anyBackend as tf.KernelBackend;
      const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
        attrs as unknown as tf.Conv2DBackpropFilterAttrs;
      if (dataFormat === 'NCHW') throw new Error(`Conv2DBackpropFilter on ${backendName} supports NHWC only; got NCHW`);
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        filterShape,
        strides,
        1,
        pad,
        dimRoundingMode,
      );
      const [kh, kw, c, f] = filterShape;
      const { top, bottom, left, right } = info.padInfo;
      const temps: tf.TensorInfo[] = [];
      const run = (kernelName: string, kernelInputs: tf.NamedTensorInfoMap, kernelAttrs: tf.NamedAttrMap) => {
        const kernel = tf.getKernel(kernelName, backendName);
        if (!kernel) throw new Error(`backend ${backendName} lacks the ${kernelName} kernel`);
        const out = kernel.kernelFunc({ inputs: kernelInputs, backend, attrs: kernelAttrs }) as tf.TensorInfo;
        temps.push(out);
        return out;
      };
      try {
        const padded =
          top + bottom + left + right === 0
            ? x
            : run(
                'PadV2',
                { x },
                {
                  paddings: [
                    [0, 0],
                    [top, bottom],
                    [left, right],
                    [0, 0],
                  ],
                  constantValue: 0,
                },
              );
        const xT = run('Transpose', { x: padded }, { perm: [3, 1, 2, 0] });
        const dyT = run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
        const conv = run(
          'Conv2D',
          { x: xT, filter: dyT },
          { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [info.strideHeight, info.strideWidth] },
        );
        const cropped =
          conv.shape[1] === kh && conv.shape[2] === kw
            ? conv
            : run('Slice', { x: conv }, { begin: [0, 0, 0, 0], size: [c, kh, kw, f] });
        const dw = run('Transpose', { x: cropped }, { perm: [1, 2, 0, 3] });
        temps.pop(); // dw is the output: the engine owns it now
        return dw;
      } finally {
        for (const t of temps) backend.disposeData(t.dataId);
      }
    },
  };
}
