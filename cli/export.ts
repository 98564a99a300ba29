import { Command } from 'commander';
import { exportSite } from '../recipes/export/exportSite.ts';
import { useBackend } from './backend.ts';
import { nonNegativeInt, positiveInt } from './options.ts';

interface ExportFlags {
  model: string;
  out: string;
  points: number;
  labels?: string;
  seed: number;
  json?: boolean;
}

/** `tempo-ssl export`: a static page that runs a frame encoder in the browser. */
export function exportCommand(): Command {
  return new Command('export')
    .description(
      "write a static page (no CDN, works from file://) that runs a frame encoder in the browser: pick a local image or video, see each frame's nearest neighbours among embeddings exported with it",
    )
    .requiredOption('--model <DIR>', 'a frame run folder (pretrain --out), or a folder with model.json')
    .requiredOption('--out <DIR>', 'folder for index.html, app.js, tf.min.js, model.js, embeddings.js')
    .option('--points <N>', 'embeddings exported with the page', positiveInt, 500)
    .option(
      '--labels <set>',
      "export embeddings of this labelled set instead of the run's inputs: a video label CSV, images.gz,labels.gz (IDX) or a folder of class folders",
    )
    .option('--seed <S>', 'seed of image draws', nonNegativeInt, 0)
    .option('--json', 'print one JSON object: page, files, items, inputShape')
    .action(async (flags: ExportFlags, command: Command) => {
      await useBackend(command);
      const site = await exportSite({
        model: flags.model,
        out: flags.out,
        points: flags.points,
        labels: flags.labels,
        seed: flags.seed,
      });
      if (flags.json) return console.log(JSON.stringify(site));
      console.log(
        `exported ${site.items} embeddings and the encoder (${site.inputShape.join('x')} input) to ${flags.out}; open ${site.page} in a browser`,
      );
    });
}
