import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The CLI entry point, as a user runs it. */
export const CLI = join(import.meta.dirname, '..', '..', 'bin', 'tempo-ssl.js');

/** What a finished CLI run printed and its exit code. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI to completion; never rejects, so tests can look at failures. `backend` sets TEMPO_BACKEND (the
 * default ladder when absent).
 */
export async function runCli(args: string[], backend?: 'wasm' | 'cpu'): Promise<CliResult> {
  const env = backend ? { ...process.env, TEMPO_BACKEND: backend } : process.env;
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { maxBuffer: 1 << 24, env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as CliResult;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
