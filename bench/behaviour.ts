/**
 * Behaviour check for refactors: three fixed-seed CLI runs whose per-step losses must not change when code moves.
 *
 *   npx tsx bench/behaviour.ts record    # runs them and writes bench/behaviour-baseline.json
 *   npx tsx bench/behaviour.ts compare   # runs them again and fails (exit 1) if any loss differs by more than 1e-6
 *   BEHAVIOUR_TOLERANCE=1e-3 npx tsx bench/behaviour.ts compare   # a looser bound (kernel changes)
 *   BEHAVIOUR_RUNS=video npx tsx bench/behaviour.ts compare       # only some of the runs (video, dialogues, text)
 *
 * Data from env TEMPO_DATA (default <repo>/../shared/data); skipped with a message when it is absent.
 * The runs: `pretrain --video` (the three shared clips, tasks order,frame-sim,cpc:0.5), `pretrain --dialogues`
 * (DailyDialog train, dialogue-order) and `pretrain --text` (one Gutenberg novel, nsp,mlm), 30 steps each, seed 0.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(repoRoot, 'bin', 'tempo-ssl.js');
const BASELINE = join(repoRoot, 'bench', 'behaviour-baseline.json');
const data = process.env.TEMPO_DATA ?? join(repoRoot, '..', 'shared', 'data');

/** Per step: the total loss and each task's loss, as metrics.jsonl records them. */
type StepLosses = { step: number; loss: number; tasks: Record<string, number> };

const RUNS: Record<string, (out: string) => string[]> = {
  video: (out) => [
    'pretrain',
    '--video',
    join(data, 'video'),
    '--tasks',
    'order,frame-sim,cpc:0.5',
    '--steps',
    '30',
    '--batch',
    '8',
    '--seed',
    '0',
    '--out',
    out,
  ],
  dialogues: (out) => [
    'pretrain',
    '--dialogues',
    join(data, 'dialogue/dailydialog/train/dialogues_train.txt'),
    '--tasks',
    'dialogue-order',
    '--steps',
    '30',
    '--batch',
    '16',
    '--max-length',
    '24',
    '--seed',
    '0',
    '--out',
    out,
  ],
  text: (out) => [
    'pretrain',
    '--text',
    join(data, 'text/gutenberg/austen-persuasion.txt'),
    '--tasks',
    'nsp,mlm',
    '--steps',
    '30',
    '--batch',
    '16',
    '--vocab-size',
    '2000',
    '--seed',
    '0',
    '--out',
    out,
  ],
};

async function runOne(name: string): Promise<StepLosses[]> {
  const out = await mkdtemp(join(tmpdir(), `behaviour-${name}-`));
  try {
    const t0 = performance.now();
    await exec(process.execPath, [CLI, ...RUNS[name]!(join(out, 'run')), '--backend', 'wasm'], {
      maxBuffer: 64 << 20,
      env: { ...process.env, TEMPO_BACKEND: 'wasm' },
    });
    const lines = (await readFile(join(out, 'run', 'metrics.jsonl'), 'utf8')).trim().split('\n');
    console.error(`${name}: ${lines.length} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return lines.map((line) => {
      const m = JSON.parse(line) as { step: number; loss: number; tasks: Record<string, { loss: number }> };
      return {
        step: m.step,
        loss: m.loss,
        tasks: Object.fromEntries(Object.entries(m.tasks).map(([k, v]) => [k, v.loss])),
      };
    });
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/** The largest loss difference between two runs and the first step where they differ by more than `tolerance`. */
function compareRuns(
  a: StepLosses[],
  b: StepLosses[],
  tolerance: number,
): { maxLossDifference: number; firstDifferentStep?: number } {
  if (a.length !== b.length)
    return { maxLossDifference: Infinity, firstDifferentStep: Math.min(a.length, b.length) + 1 };
  let worst = 0;
  let first: number | undefined;
  a.forEach((x, i) => {
    const y = b[i]!;
    const pairs = [[x.loss, y.loss], ...Object.entries(x.tasks).map(([task, loss]) => [loss, y.tasks[task] ?? NaN])];
    // A missing task or a step out of place counts as an infinite difference.
    const diff =
      x.step !== y.step
        ? Infinity
        : Math.max(...pairs.map(([p, q]) => (Number.isNaN(q!) ? Infinity : Math.abs(p! - q!))));
    worst = Math.max(worst, diff);
    if (diff > tolerance) first ??= x.step;
  });
  return { maxLossDifference: worst, firstDifferentStep: first };
}

const mode = process.argv[2];
if (mode !== 'record' && mode !== 'compare') {
  console.error('usage: npx tsx bench/behaviour.ts record|compare');
  process.exit(2);
}
if (!existsSync(join(data, 'video'))) {
  console.error(`skipped: no shared data at ${data} (set TEMPO_DATA)`);
  process.exit(0);
}
const chosen = (process.env.BEHAVIOUR_RUNS ?? Object.keys(RUNS).join(',')).split(',');
const results: Record<string, StepLosses[]> = {};
for (const name of chosen) results[name] = await runOne(name);

if (mode === 'record') {
  const previous = existsSync(BASELINE)
    ? (JSON.parse(await readFile(BASELINE, 'utf8')) as Record<string, StepLosses[]>)
    : {};
  await writeFile(BASELINE, JSON.stringify({ ...previous, ...results }) + '\n');
  console.log(`recorded ${chosen.join(', ')} in ${BASELINE}`);
} else {
  const tolerance = Number(process.env.BEHAVIOUR_TOLERANCE ?? 1e-6);
  const baseline = JSON.parse(await readFile(BASELINE, 'utf8')) as Record<string, StepLosses[]>;
  let failed = false;
  for (const name of chosen) {
    const result = compareRuns(results[name]!, baseline[name] ?? [], tolerance);
    const ok = result.maxLossDifference <= tolerance;
    failed ||= !ok;
    console.log(JSON.stringify({ run: name, steps: results[name]!.length, ...result, tolerance, ok }));
  }
  process.exit(failed ? 1 : 0);
}
