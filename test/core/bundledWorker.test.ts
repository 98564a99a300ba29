import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bundledWorker } from '../../core/bundledWorker.ts';

test('a TypeScript module and its imports run on a thread without the loader hooks of this process', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-bundled-'));
  try {
    await writeFile(join(dir, 'double.ts'), 'export const double = (x: number): number => 2 * x;\n');
    await writeFile(
      join(dir, 'entry.ts'),
      [
        "import { parentPort, workerData } from 'node:worker_threads';",
        "import { double } from './double.ts';",
        'const input: number = (workerData as { x: number }).x;',
        'parentPort!.postMessage({ value: double(input), execArgv: process.execArgv });',
      ].join('\n'),
    );
    const worker = await bundledWorker(pathToFileURL(join(dir, 'entry.ts')), { workerData: { x: 21 } });
    const message = await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject));
    await worker.terminate();
    t.deepEqual(message, { value: 42, execArgv: [] });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a module that does not bundle rejects, so callers can stay on their own thread', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-bundled-'));
  try {
    await writeFile(join(dir, 'broken.ts'), "import { nothing } from './missing.ts';\nconsole.log(nothing);\n");
    await t.throwsAsync(bundledWorker(pathToFileURL(join(dir, 'broken.ts'))));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
