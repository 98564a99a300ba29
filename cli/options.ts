import { InvalidArgumentError, Option } from 'commander';

/** Commander parser for a positive integer flag; the message names the flag's value and what is expected. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}".`);
  return n;
}

/** Commander parser for a non-negative integer (seeds). */
export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected an integer >= 0, got "${value}".`);
  return n;
}

/** Commander parser for a positive number (learning rate, fps, minutes). */
export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a positive number, got "${value}".`);
  return n;
}

/** Prints rows as an aligned text table. */
export function printTable(rows: Record<string, string | number>[]): void {
  if (rows.length === 0) return;
  const keys = Object.keys(rows[0]!);
  const cell = (v: string | number | undefined) =>
    typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : (v ?? '');
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => cell(r[k]).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  console.log(line(keys));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const row of rows) console.log(line(keys.map((k) => cell(row[k]))));
}

/** `--format`: the format of dialogue files (pretrain, process-corpus). */
export function dialogueFormatOption(): Option {
  return new Option('--format <name>', 'dialogue file format')
    .choices(['auto', 'dailydialog', 'jsonl', 'text'])
    .default('auto');
}

/** `--on-invalid skip|fail` for inputs that can be partly bad; `what` names them for the help text. */
export function onInvalidOption(what: string): Option {
  return new Option('--on-invalid <mode>', `${what}: fail with the error, or skip and count them`)
    .choices(['skip', 'fail'])
    .default('fail');
}

/**
 * Commander parser of the repeatable `--views cam1.mp4,cam2.mp4`: each use adds one group (one synchronized
 * recording) of its comma-separated entries; how many a group needs is checked when the run is built.
 */
export function collectViewGroup(value: string, previous: string[][] | undefined): string[][] {
  const group = value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  return [...(previous ?? []), group];
}
