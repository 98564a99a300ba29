import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { writeFileAtomic } from './atomicWrite.ts';

/** Bundles found or made in this process, by entry file. */
const bundles = new Map<string, Promise<string>>();

/** Names how bundles are made: change it with the esbuild options below, so that no older bundle is found. */
const BUNDLE_RECIPE = 'esm-rxjs-1';

/** Where bundles and their input lists are kept between processes. */
const CACHE = join(tmpdir(), 'tempo-ssl-threads');

/**
 * Starts a worker thread on a TypeScript module, bundled with its imports into one plain-JS file by esbuild (tsx's
 * own compiler, a dependency). The thread then starts in about 0.1 s: through tsx's loader hooks, which each
 * thread registers for itself, a thread took 0.4-1.5 s of CPU to load the same modules. The bundle is kept under
 * the OS temp folder with the size and mtime of every file it was made from, and made again when one changes;
 * the thread runs without this process's `--import` hooks.
 *
 * @throws whatever esbuild throws when the module does not bundle (callers that can do without the thread catch it).
 */
export async function bundledWorker(entry: URL, options: WorkerOptions = {}): Promise<Worker> {
  const file = fileURLToPath(entry);
  let bundle = bundles.get(file);
  if (!bundle) {
    bundle = cachedBundle(file);
    bundles.set(file, bundle);
    bundle.catch(() => bundles.delete(file));
  }
  return new Worker(await bundle, { ...options, execArgv: [] });
}

/** What the cache keeps beside a bundle: the files it was made from, as they were. */
interface BundleRecord {
  bundle: string;
  inputs: Array<[path: string, size: number, mtimeMs: number]>;
}

async function cachedBundle(file: string): Promise<string> {
  const key = createHash('sha256').update(`${BUNDLE_RECIPE}\0${file}`).digest('hex').slice(0, 20);
  const record = join(CACHE, `${key}.json`);
  try {
    const kept = JSON.parse(await readFile(record, 'utf8')) as BundleRecord;
    if (existsSync(kept.bundle) && (await unchanged(kept.inputs))) return kept.bundle;
  } catch {
    // No record yet, or an unreadable one: bundle again.
  }
  // Loaded here only: a process that finds its bundle never loads esbuild.
  const { build } = await import('esbuild');
  const started = Date.now();
  const result = await build({
    entryPoints: [file],
    absWorkingDir: '/',
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    metafile: true,
    // A thread never bundles threads of its own.
    external: ['esbuild'],
    alias: esmBuilds(),
    logLevel: 'silent',
  });
  const code = result.outputFiles[0]!.contents;
  const bundle = join(CACHE, `${createHash('sha256').update(code).digest('hex').slice(0, 20)}.mjs`);
  await mkdir(CACHE, { recursive: true });
  if (!existsSync(bundle)) await writeFileAtomic(bundle, code);
  const inputs = await Promise.all(
    Object.keys(result.metafile.inputs).map(async (p): Promise<BundleRecord['inputs'][number]> => {
      const path = resolve('/', p);
      const s = await stat(path);
      return [path, s.size, s.mtimeMs];
    }),
  );
  // A file changed while esbuild read it may be in the bundle old or new: keep no record, bundle again next time.
  if (inputs.every(([, , mtimeMs]) => mtimeMs < started - 1000))
    await writeFileAtomic(record, JSON.stringify({ bundle, inputs } satisfies BundleRecord));
  return bundle;
}

/**
 * Packages whose `node` export is CommonJS, which esbuild cannot tree-shake, mapped to their ES module build. The
 * tokenizing thread uses no part of rxjs, which its module imports for other functions: the whole CommonJS rxjs made
 * 344 of its bundle's 395 kB, and the thread started about 12 ms later (84 against 72 ms, median of 8 starts).
 */
function esmBuilds(): Record<string, string> {
  const require = createRequire(import.meta.url);
  try {
    return { rxjs: join(dirname(require.resolve('rxjs/package.json')), 'dist', 'esm', 'index.js') };
  } catch {
    return {};
  }
}

async function unchanged(inputs: BundleRecord['inputs']): Promise<boolean> {
  const now = await Promise.all(inputs.map(([path]) => stat(path).catch(() => undefined)));
  return inputs.every(([, size, mtimeMs], i) => now[i]?.size === size && now[i].mtimeMs === mtimeMs);
}
