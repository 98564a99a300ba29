/**
 * The learning checks too long for `npm test` (test/_long.ts): runs every test file that has one, with
 * TEMPO_LONG_TESTS=1, and returns one row per test: passed or not, its seconds and what it logged (the held-out
 * figures, baselines and broken controls). These are the same tests `npm test` lists as skipped.
 *
 *   npm run bench -- learning [--json]        # about 15 minutes on 2 cores
 */
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One test of a file that holds long learning checks. */
export interface LearningTestRow {
  /** ava's title: file path segments and the test's name. */
  test: string;
  passed: boolean;
  /** Seconds ava reported (0 when it printed none: quick tests). */
  seconds: number;
  /** What the test logged with t.log, joined: its figures. */
  log: string;
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Runs the files with long learning checks (or `files`) and parses ava's verbose report. */
export async function benchLearningTests(files?: string[]): Promise<LearningTestRow[]> {
  const chosen = files ?? (await filesWithLongTests(join(repoRoot, 'test')));
  const output = await runAva(chosen);
  return parseVerbose(output);
}

async function filesWithLongTests(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.test.ts')) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await readFile(path, 'utf8')).includes('/_long.ts')) found.push(relative(repoRoot, path));
  }
  return found.sort();
}

function runAva(files: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(repoRoot, 'node_modules', 'ava', 'entrypoints', 'cli.mjs'), '--verbose', ...files],
      {
        cwd: repoRoot,
        env: { ...process.env, TEMPO_LONG_TESTS: '1', FORCE_COLOR: '0' },
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      process.stderr.write(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    child.on('error', reject);
    child.on('close', () => resolve(output));
  });
}

/** ava's verbose lines: `✔ a › b › title (1m 4.2s)`, `✘ [fail]: ...`, then the test's `ℹ` log lines. */
export function parseVerbose(output: string): LearningTestRow[] {
  const rows: LearningTestRow[] = [];
  let current: LearningTestRow | undefined;
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    const result = /^([✔✘✖])\s+(?:\[fail\]: )?(.*?)(?:\s+\((?:(\d+)m\s*)?([\d.]+)(ms|s)\))?$/.exec(line);
    if (result) {
      const [, mark, title, minutes, amount, unit] = result;
      const seconds = amount ? Number(minutes ?? 0) * 60 + Number(amount) / (unit === 'ms' ? 1000 : 1) : 0;
      // ava can print a result twice (again in its summary); the first is kept, and its log lines with it.
      current = rows.some((r) => r.test === title)
        ? undefined
        : { test: title!, passed: mark === '✔', seconds, log: '' };
      if (current) rows.push(current);
      continue;
    }
    const log = /^ℹ\s+(.*)$/.exec(line);
    if (log && current) current.log = current.log ? `${current.log} | ${log[1]}` : log[1]!;
  }
  return rows;
}
