import { Command } from 'commander';
import { writeReport } from '../recipes/report/writeReport.ts';
import { useBackend } from './backend.ts';
import { nonNegativeInt, positiveInt } from './options.ts';

interface ReportFlags {
  out?: string;
  points: number;
  labels?: string;
  dialogues?: string[];
  seed: number;
  curvesOnly?: boolean;
  json?: boolean;
}

/** `tempo-ssl report <run>`: one self-contained HTML file of what a run learned. */
export function reportCommand(): Command {
  return new Command('report')
    .description(
      'write one self-contained HTML report of a run (opens offline): settings, curves per task, the evaluate table, an embedding map with nearest neighbours, scored dialogues or nearest words',
    )
    .argument('<run>', 'a pretrain --out folder')
    .option('--out <FILE>', 'where to write the HTML (default <run>/report.html)')
    .option('--points <N>', 'items on the embedding map', positiveInt, 2000)
    .option(
      '--labels <set>',
      "map this labelled set instead of the run's inputs, coloured by label: a video label CSV, images.gz,labels.gz (IDX) or a folder of class folders",
    )
    .option('--dialogues <files...>', "dialogue models: score these dialogues (default: the run's own files)")
    .option('--seed <S>', 'seed of UMAP and of image draws', nonNegativeInt, 0)
    .option('--curves-only', 'settings, curves and evaluation only: no encoder is loaded')
    .option('--json', 'print one JSON object: the path and what the report holds')
    .action(async (run: string, flags: ReportFlags, command: Command) => {
      if (!flags.curvesOnly) await useBackend(command);
      const { path, content } = await writeReport({
        run,
        out: flags.out,
        points: flags.points,
        labels: flags.labels,
        dialogues: flags.dialogues,
        seed: flags.seed,
        curvesOnly: flags.curvesOnly,
      });
      const summary = {
        path,
        charts: content.charts.length,
        evaluation: content.evaluation !== undefined,
        mapPoints: content.map?.points.length ?? 0,
        dialogues: content.dialogues?.length ?? 0,
        words: content.words?.length ?? 0,
        notes: content.notes,
      };
      if (flags.json) return console.log(JSON.stringify(summary));
      console.log(
        `report: ${path} (${summary.charts} charts${summary.mapPoints ? `, ${summary.mapPoints} points on the map` : ''}${summary.dialogues ? `, ${summary.dialogues} dialogues` : ''}${summary.words ? `, ${summary.words} words` : ''})`,
      );
      for (const note of content.notes) console.log(`  note: ${note}`);
    });
}
