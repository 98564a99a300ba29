/**
 * Dialogue coherence end to end through the CLI: `pretrain --dialogues` (dialogue-order, Wu et al. 2019) on
 * DailyDialog train, then three figures on the validation dialogues:
 * - window accuracy and window ROC AUC: the trained model on the task's own held-out samples (its sampler on the
 *   validation dialogues, seed 99), in order against out of order;
 * - original vs shuffled: `score-dialogue` on the validation dialogues of 3+ turns and on shuffled copies (turns in
 *   a random order other than the original); the ROC AUC over the dialogues that have a window, and over those of
 *   6+ turns (a window in either variant, so the two variants compare on the same dialogues).
 *
 *   npx tsx bench/dialogueCoherence.ts                      # data from env TEMPO_DATA, default <repo>/../shared/data
 *   BENCH_STEPS=100 npx tsx bench/dialogueCoherence.ts      # a shorter pretrain (default 2400 steps)
 *   BENCH_LR=1e-3 BENCH_SEED=2 npx tsx bench/dialogueCoherence.ts   # learning rate (3e-3) and --seed (0)
 *   BENCH_VARIANT=utterances npx tsx bench/dialogueCoherence.ts     # --dialogue-variant (default: the CLI's)
 *   BENCH_TUNE=1 npx tsx bench/dialogueCoherence.ts         # train on all but the last 1000 train dialogues and
 *                                                           # measure on those 1000: for choosing settings
 *   BENCH_OUT=results.jsonl npx tsx bench/dialogueCoherence.ts      # also append the result as one JSON line
 *   BENCH_KEEP=runs/d npx tsx bench/dialogueCoherence.ts    # keep the run folder (and the held-out files) there
 *   npx tsx bench/dialogueCoherence.ts aggregations runs/d  # ROC AUC of other ways to combine a dialogue's windows
 *
 * Measured (wasm, 2 cores, 800 steps at 3e-3, batch 32, word-level tokenizer), before the pair-triple variant:
 * AUC 0.817 over 960 dialogues, mean score 0.573 original vs 0.482 shuffled; 820 s training, 142 s scoring. With a
 * WordPiece tokenizer (--tokenizer-model wordpiece) the same run gave 0.647. Before utterances were max-pooled and
 * the head compared adjacent pairs, the task did not learn: 0.627 after 300 steps, 0.513 after 1000.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { lastValueFrom, from, toArray } from 'rxjs';
import { Rng } from '../core/rng.ts';
import { rocAuc } from '../evaluation/rocAuc.ts';
import { selectBackend } from '../models/backend.ts';
import { loadDialogueScorer, dialogueOrderTaskOf } from '../recipes/scoreDialogues.ts';
import { dialogueWindows, scoreWindows } from '../tasks/dialogue/utteranceOrder.ts';
import { readDialogues } from '../text/dialogue.ts';
import type { PretextTask } from '../tasks/task.ts';
import { evaluate } from './textTaskRun.ts';

const run = promisify(execFile);
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(repoRoot, 'bin', 'tempo-ssl.js');

/** What the bench measured. */
export interface CoherenceResult {
  /** The run's dialogue-order variant, as its run.json records it. */
  variant: string;
  seed: number;
  steps: number;
  learningRate: number;
  /** `validation`, or `train-slice` under BENCH_TUNE (the last 1000 train dialogues, left out of training). */
  measuredOn: string;
  trainSeconds: number;
  scoreSeconds: number;
  /** Last training step's dialogue-order accuracy. */
  trainAccuracy: number;
  /** Held-out samples of the task's own sampler, and the model's accuracy and ROC AUC on them. */
  windowSamples: number;
  windowAccuracy: number;
  windowAuc: number;
  /** Held-out dialogues with at least 3 turns (each scored as is and shuffled). */
  dialogues: number;
  /** Of those, the dialogues with a window in this variant (the others score null). */
  scored: number;
  /** ROC AUC of original (positive) vs shuffled (negative) scores of the scored dialogues. */
  auc: number;
  /** The same over the dialogues of 6+ turns (a window in every variant). */
  dialogues6: number;
  auc6: number;
  meanOriginal: number;
  meanShuffled: number;
}

const numberFromEnv = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);

/** Runs the bench; undefined (with a message) when DailyDialog is absent. */
export async function benchDialogueCoherence(
  dataDir = process.env.TEMPO_DATA ?? join(repoRoot, '..', 'shared', 'data'),
  steps = numberFromEnv('BENCH_STEPS', 2400),
): Promise<CoherenceResult | undefined> {
  const daily = join(dataDir, 'dialogue', 'dailydialog');
  const trainFile = join(daily, 'train', 'dialogues_train.txt');
  const validationFile = join(daily, 'validation', 'dialogues_validation.txt');
  if (!existsSync(trainFile) || !existsSync(validationFile)) {
    console.log(`bench/dialogueCoherence: skipped, no DailyDialog at ${daily} (set TEMPO_DATA)`);
    return undefined;
  }
  const seed = numberFromEnv('BENCH_SEED', 0);
  const learningRate = numberFromEnv('BENCH_LR', 3e-3);
  const tune = process.env.BENCH_TUNE === '1';
  const dir = await mkdtemp(join(tmpdir(), 'tempo-bench-coherence-'));
  try {
    // Under BENCH_TUNE the last 1000 train dialogues stand in for validation, which stays unseen.
    let [fitFile, heldOutFile] = [trainFile, validationFile];
    if (tune) {
      const lines = (await readFile(trainFile, 'utf8')).split('\n').filter((l) => l.trim() !== '');
      [fitFile, heldOutFile] = [join(dir, 'fit.txt'), join(dir, 'held-out.txt')];
      await writeFile(fitFile, lines.slice(0, -1000).join('\n') + '\n');
      await writeFile(heldOutFile, lines.slice(-1000).join('\n') + '\n');
    }
    const out = join(dir, 'run');
    const variant = process.env.BENCH_VARIANT ? ['--dialogue-variant', process.env.BENCH_VARIANT] : [];
    const t0 = performance.now();
    const trained = await cli([
      'pretrain',
      '--dialogues',
      fitFile,
      '--tasks',
      'dialogue-order',
      ...variant,
      '--steps',
      String(steps),
      '--batch',
      '32',
      '--lr',
      String(learningRate),
      '--max-length',
      '24',
      '--seed',
      String(seed),
      '--out',
      out,
      '--checkpoint-every',
      String(steps),
      '--json',
    ]);
    const trainSeconds = (performance.now() - t0) / 1000;
    const summary = JSON.parse(trained) as { last?: { tasks: Record<string, { accuracy: number }> } };
    const windows = await windowFigures(out, heldOutFile);

    // Originals and shuffled copies, in DailyDialog format, of the held-out dialogues with >= 3 turns.
    const rng = new Rng(5);
    const dialogues = (await readFile(heldOutFile, 'utf8'))
      .split('\n')
      .map((l) =>
        l
          .split('__eou__')
          .map((t) => t.trim())
          .filter(Boolean),
      )
      .filter((turns) => turns.length >= 3);
    const asLine = (turns: string[]): string => turns.map((t) => `${t} __eou__`).join(' ');
    const original = join(dir, 'original.txt');
    const shuffled = join(dir, 'shuffled.txt');
    await writeFile(original, dialogues.map(asLine).join('\n') + '\n');
    await writeFile(shuffled, dialogues.map((turns) => asLine(shuffleTurns(turns, rng))).join('\n') + '\n');
    const t1 = performance.now();
    const scores = async (file: string): Promise<(number | null)[]> =>
      (await cli(['score-dialogue', '--model', out, '--input', file, '--json']))
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { score: number | null }).score);
    const positives = await scores(original);
    const negatives = await scores(shuffled);
    const scoreSeconds = (performance.now() - t1) / 1000;
    const both = (keep: (i: number) => boolean): [number[], number[]] => {
      const kept = dialogues.map((_, i) => i).filter((i) => keep(i) && positives[i] !== null && negatives[i] !== null);
      return [kept.map((i) => positives[i]!), kept.map((i) => negatives[i]!)];
    };
    const [pos, neg] = both(() => true);
    const [pos6, neg6] = both((i) => dialogues[i]!.length >= 6);
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const info = JSON.parse(await readFile(join(out, 'run.json'), 'utf8')) as { dialogueVariant?: string };
    return {
      variant: info.dialogueVariant ?? 'utterances',
      seed,
      steps,
      learningRate,
      measuredOn: tune ? 'train-slice' : 'validation',
      trainSeconds,
      scoreSeconds,
      trainAccuracy: summary.last?.tasks['dialogue-order']?.accuracy ?? Number.NaN,
      ...windows,
      dialogues: dialogues.length,
      scored: pos.length,
      auc: rocAuc(pos, neg),
      dialogues6: pos6.length,
      auc6: rocAuc(pos6, neg6),
      meanOriginal: mean(pos),
      meanShuffled: mean(neg),
    };
  } finally {
    if (process.env.BENCH_KEEP) await cp(dir, process.env.BENCH_KEEP, { recursive: true });
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Ways to combine a dialogue's window probabilities (each window's given order among all orders of its turns, see
 * `scoreWindows`) into its score; score-dialogue uses `geometricMean`.
 */
const AGGREGATIONS: Record<string, (p: Float32Array) => number> = {
  geometricMean: (p) => Math.exp(p.reduce((a, b) => a + Math.log(Math.max(b, 1e-30)), 0) / p.length),
  mean: (p) => p.reduce((a, b) => a + b, 0) / p.length,
  meanLogit: (p) => p.reduce((a, b) => a + Math.log(b / (1 - b)), 0) / p.length,
  min: (p) => Math.min(...p),
  median: (p) => [...p].sort((a, b) => a - b)[Math.floor(p.length / 2)]!,
};

/**
 * ROC AUC of original against shuffled dialogues for each of {@link AGGREGATIONS}, from a folder kept by
 * BENCH_KEEP (its run and the held-out originals and shuffled copies it scored).
 */
export async function aggregationAucs(kept: string): Promise<Record<string, number>> {
  await selectBackend({ backend: 'wasm', log: () => {} });
  const scorer = await loadDialogueScorer(join(kept, 'run'));
  const probabilities = async (file: string): Promise<(Float32Array | undefined)[]> => {
    const dialogues = await lastValueFrom(readDialogues(file).pipe(toArray()));
    return dialogues.map((d) => {
      const prepared = dialogueWindows(scorer, d);
      return 'reason' in prepared ? undefined : scoreWindows(scorer, prepared);
    });
  };
  const [originals, shuffled] = [
    await probabilities(join(kept, 'original.txt')),
    await probabilities(join(kept, 'shuffled.txt')),
  ];
  scorer.encoder.dispose();
  scorer.head.dispose();
  const keptIndices = originals.map((_, i) => i).filter((i) => originals[i] && shuffled[i]);
  return Object.fromEntries(
    Object.entries(AGGREGATIONS).map(([name, combine]) => [
      name,
      rocAuc(
        keptIndices.map((i) => combine(originals[i]!)),
        keptIndices.map((i) => combine(shuffled[i]!)),
      ),
    ]),
  );
}

/** The trained model on its task's own samples of the held-out dialogues: accuracy and ROC AUC of its logits. */
async function windowFigures(
  runDir: string,
  heldOutFile: string,
): Promise<{ windowSamples: number; windowAccuracy: number; windowAuc: number }> {
  await selectBackend({ backend: 'wasm', log: () => {} });
  const scorer = await loadDialogueScorer(runDir);
  const task = dialogueOrderTaskOf(scorer);
  const dialogues = await lastValueFrom(readDialogues(heldOutFile).pipe(toArray()));
  const samples = await lastValueFrom(from(dialogues).pipe(task.sampler({ rng: new Rng(99) }), toArray()));
  const { metric, auc } = evaluate(
    task as PretextTask<never>,
    scorer.encoder,
    scorer.head,
    samples,
    64,
    scorer.maxLength,
  );
  scorer.encoder.dispose();
  scorer.head.dispose();
  return { windowSamples: samples.length - (samples.length % 64), windowAccuracy: metric, windowAuc: auc };
}

async function cli(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, ...args], { maxBuffer: 1 << 28 });
  return stdout;
}

/**
 * The turns in a random order other than the original. Turns that are all equal (a one-turn dialogue, or one
 * line repeated) have no other order and come back as they are; an unguarded redraw loop would never end on them.
 * Shared with `textTasks.ts`.
 *
 * @example
 * shuffleTurns(['hi', 'how are you?', 'fine'], new Rng(1)); // the same turns, never in this order
 */
export function shuffleTurns(turns: readonly string[], rng: Rng): string[] {
  if (turns.every((t) => t === turns[0])) return [...turns];
  let out: string[];
  do out = rng.shuffle([...turns]);
  while (out.every((t, i) => t === turns[i]));
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href && process.argv[2] === 'aggregations') {
  console.table([{ kept: process.argv[3], ...(await aggregationAucs(process.argv[3]!)) }]);
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await benchDialogueCoherence();
  if (result) {
    console.table([result]);
    if (process.env.BENCH_OUT) await appendFile(process.env.BENCH_OUT, JSON.stringify(result) + '\n');
  }
}
