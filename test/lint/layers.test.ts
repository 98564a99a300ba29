// The layer rules of `npm run lint` (.dependency-cruiser.cjs) on a scratch tree: an upward import fails, the same
// tree with the import pointing down passes. This is the proof that the rule fires, kept as a test.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function cruise(files: Record<string, string>): Promise<{ code: number; output: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-layers-'));
  try {
    const tsconfig = { compilerOptions: { allowImportingTsExtensions: true, noEmit: true, module: 'NodeNext' } };
    await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), text);
    }
    const folders = [...new Set(Object.keys(files).map((f) => f.split('/')[0]!))];
    const bin = join(root, 'node_modules', '.bin', 'depcruise');
    try {
      const { stdout } = await exec(bin, ['--config', join(root, '.dependency-cruiser.cjs'), ...folders], { cwd: dir });
      return { code: 0, output: stdout };
    } catch (error) {
      const e = error as { code: number; stdout: string };
      return { code: e.code, output: e.stdout };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('an import from core/ up to training/ fails the layer rules', async (t) => {
  const { code, output } = await cruise({
    'core/clock.ts': "import { step } from '../training/loop.ts';\nexport const now = step;\n",
    'training/loop.ts': 'export const step = 1;\n',
  });
  t.not(code, 0);
  t.regex(output, /no-upward-from-core: core\/clock\.ts → training\/loop\.ts/);
});

test('pipeline/ importing text/ (siblings) and a circle both fail', async (t) => {
  const { code, output } = await cruise({
    'pipeline/a.ts': "import { b } from '../text/b.ts';\nexport const a = b;\n",
    'text/b.ts': 'export const b = 1;\n',
    'core/c.ts': "import { d } from './d.ts';\nexport const c = d;\n",
    'core/d.ts': "import { c } from './c.ts';\nexport const d = () => c;\n",
  });
  t.not(code, 0);
  t.regex(output, /pipeline-and-text-are-siblings/);
  t.regex(output, /no-circular/);
});

test('the same tree with the import pointing down passes', async (t) => {
  const { code, output } = await cruise({
    'training/loop.ts': "import { now } from '../core/clock.ts';\nexport const step = now;\n",
    'core/clock.ts': 'export const now = 1;\n',
  });
  t.is(code, 0, output);
});
