import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RunFolderError } from '../../core/errors.ts';
import { writeFileAtomic } from '../../core/atomicWrite.ts';
import { loadEncoder } from '../../evaluation/evaluate.ts';
import { loadModel } from '../../models/modelIO.ts';
import { loadTokenizer } from '../../text/tokenizers/loadTokenizer.ts';
import type { TrainHook } from '../../training/trainer.ts';
import type { RunInfo } from '../pretrainVideo.ts';
import type { TextRunInfo } from '../pretrainText.ts';
import { curveChart } from './curveChart.ts';
import { embeddingMap } from './embeddingMap.ts';
import { labelledItems, runItems } from './mapItems.ts';
import { curvesOf, readMetrics } from './metricsSeries.ts';
import { reportHtml, type EvaluationJson, type ReportContent } from './reportHtml.ts';
import { scoredDialogues, wordNeighbours } from './textViews.ts';

/** Options of {@link writeReport}. */
export interface ReportOptions {
  /** The run folder (`pretrain --out`). */
  run: string;
  /** Where to write the HTML. Default `<run>/report.html`. */
  out?: string;
  /** Only the settings, curves and evaluation table: no encoder is loaded (what `pretrain --report` writes at each checkpoint). */
  curvesOnly?: boolean;
  /** Items on the embedding map. Default 2000. */
  points?: number;
  /** A labelled set to map instead of the run's inputs (as `evaluate --train` takes it), coloured by label. */
  labels?: string;
  /** Dialogue files to score (dialogue models). Default: the first dialogues of the run's own files. */
  dialogues?: string[];
  /** Dialogues shown. Default 4. */
  dialogueCount?: number;
  /** Seed of UMAP and of image draws. Default 0. */
  seed?: number;
  /** Moving-average weight of the smoothed curves. Default 0.6. */
  smoothing?: number;
  /** UMAP epochs (default: umap-js's choice); tests lower it. */
  umapEpochs?: number;
}

/** What {@link writeReport} wrote. */
export interface WrittenReport {
  path: string;
  content: ReportContent;
}

/**
 * Writes a run's report: one self-contained HTML file (see `reportHtml`) with the run's settings, its curves per
 * task (raw and smoothed: loss, accuracy, monitors, samples/s, and `lr` or `knnAccuracy` when logged), the
 * `evaluate` table when the folder holds `evaluation.json`, and what the encoder learned: for frame runs a UMAP
 * map of its inputs (or of `labels`) with a nearest-neighbour gallery; for dialogue runs scored dialogues; for
 * text runs the nearest neighbours of common words. The file is replaced atomically, so a browser reloading it
 * during a run never reads half a report.
 *
 * @throws RunFolderError when `run` is not a run folder.
 * @example
 * const { path } = await writeReport({ run: 'runs/a' }); // runs/a/report.html
 */
export async function writeReport(options: ReportOptions): Promise<WrittenReport> {
  const { run } = options;
  if (!existsSync(join(run, 'run.json')) && !existsSync(join(run, 'metrics.jsonl')))
    throw new RunFolderError(
      run,
      'holds no run.json and no metrics.jsonl: give the --out folder of pretrain (a run that has logged steps)',
    );
  const path = options.out ?? join(run, 'report.html');
  const settings = await readJson<RunInfo | TextRunInfo>(join(run, 'run.json'));
  const lines = await readMetrics(join(run, 'metrics.jsonl'));
  const content: ReportContent = {
    run,
    written: new Date().toISOString(),
    settings,
    summary: lines.length > 0 ? summarise(lines.at(-1)!) : undefined,
    charts: [],
    evaluation: await readJson<EvaluationJson>(join(run, 'evaluation.json')),
    notes: [],
  };
  for (const curve of curvesOf(lines, options.smoothing ?? 0.6))
    content.charts.push({ group: curve.group, title: curve.title, svg: await curveChart(curve) });
  const textRun = settings !== undefined && 'kind' in settings && settings.kind === 'text';
  if (!content.evaluation && !textRun)
    content.notes.push(`no evaluation.json: run tempo-ssl evaluate --model ${run} to add the table`);
  if (options.curvesOnly)
    content.notes.push('written during training: settings and curves only (the rest comes when the run ends)');
  else if (!existsSync(join(run, 'encoder', 'model.json'))) content.notes.push('no encoder/ yet: no map');
  else if (textRun) await addTextViews(content, settings as TextRunInfo, options);
  else if (settings) await addMap(content, settings as RunInfo, options);
  await writeFileAtomic(path, reportHtml(content));
  return { path, content };
}

/**
 * A trainer hook that rewrites the report (curves only, no encoder loaded) every `every` steps, so a long run is
 * watched by reloading the file.
 */
export function reportHook(options: ReportOptions & { every: number }): TrainHook {
  return {
    onStep: async ({ step }) => {
      if (step % options.every === 0) await writeReport({ ...options, curvesOnly: true });
    },
  };
}

async function addMap(content: ReportContent, info: RunInfo, options: ReportOptions): Promise<void> {
  const count = options.points ?? 2000;
  const items = options.labels
    ? await labelledItems(options.labels, info.format, count)
    : await runItems(info, count, options.seed ?? 0);
  if (!items || items.items.length === 0) {
    content.notes.push('no map: the run read only live inputs (give --labels to map a labelled set)');
    return;
  }
  const encoder = await loadEncoder(content.run);
  try {
    content.map = await embeddingMap(encoder, items, { seed: options.seed, epochs: options.umapEpochs });
  } finally {
    encoder.dispose();
  }
}

async function addTextViews(content: ReportContent, info: TextRunInfo, options: ReportOptions): Promise<void> {
  const { run } = content;
  if (existsSync(join(run, 'heads', 'dialogue-order', 'model.json'))) {
    const files = options.dialogues ?? info.dialogues;
    if (files.length > 0) content.dialogues = await scoredDialogues(run, files, options.dialogueCount ?? 4);
    else content.notes.push('no dialogues to score: give --dialogues FILE');
  }
  const encoder = await loadModel(join(run, 'encoder'));
  try {
    content.words = wordNeighbours(encoder, await loadTokenizer(join(run, info.tokenizer)));
  } finally {
    encoder.dispose();
  }
  if (content.words.length === 0)
    content.notes.push('no nearest words: none of the common words is a whole token of the vocabulary');
}

async function readJson<T>(path: string): Promise<T | undefined> {
  return existsSync(path) ? (JSON.parse(await readFile(path, 'utf8')) as T) : undefined;
}

function summarise(last: { step: number; loss: number; elapsedSeconds?: number }): string {
  return `${last.step} steps logged, last loss ${last.loss.toFixed(4)}${last.elapsedSeconds !== undefined ? `, ${last.elapsedSeconds.toFixed(0)} s of training` : ''}`;
}
