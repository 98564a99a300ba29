import { Command, InvalidArgumentError, Option } from 'commander';
import { OptionError } from '../core/errors.ts';
import { loadEncoder } from '../evaluation/evaluate.ts';
import { featureModel, parseLayerSpec } from '../evaluation/featureLayer.ts';
import { fewShotEpisodes, type FewShotResult } from '../evaluation/fewShot.ts';
import { embed } from '../evaluation/linearProbe.ts';
import { labelledSetKind, readLabelledSet } from '../evaluation/readLabelledSet.ts';
import { subset } from '../evaluation/splitLabelled.ts';
import { parseClassList } from '../recipes/imageLabels.ts';
import { readRunInfo } from '../recipes/pretrainVideo.ts';
import { useBackend } from './backend.ts';
import { nonNegativeInt, positiveInt, printTable } from './options.ts';

interface FewShotFlags {
  model: string;
  test: string;
  classes?: number[];
  ways: number;
  shots: number[];
  queries: number;
  episodes: number;
  metric: 'cosine' | 'euclidean';
  layer: string;
  seed: number;
  limit: number;
  json?: boolean;
}

/**
 * `tempo-ssl few-shot`: N-way K-shot episodes on held-out (novel) classes with a prototype classifier on a run's
 * frozen features (Gidaris et al. 2019's protocol for few-shot learning with rotation as an auxiliary loss).
 */
export function fewShotCommand(): Command {
  return new Command('few-shot')
    .description(
      'N-way K-shot episodes on novel classes: prototypes (class means of the encoder features) classify queries; mean accuracy and 95% CI',
    )
    .requiredOption('--model <DIR>', 'a pretrain --out folder, or a folder with model.json')
    .requiredOption(
      '--test <SET>',
      'labelled set holding the novel classes: IDX images.gz,labels.gz (images first) or a folder of class subfolders',
    )
    .option(
      '--classes <list>',
      'the novel classes episodes draw from, e.g. 5-9 (never the classes the run trained on); default: all in --test',
      parseClassList,
    )
    .option('--ways <N>', 'classes an episode draws', positiveInt, 5)
    .option('--shots <list>', 'labelled examples a class, one result for each, e.g. 1,5', shotList, [1, 5])
    .option('--queries <Q>', 'query items a class an episode scores', positiveInt, 15)
    .option('--episodes <E>', 'episodes of each setting', positiveInt, 600)
    .addOption(
      new Option('--metric <name>', 'query-to-prototype distance').choices(['cosine', 'euclidean']).default('cosine'),
    )
    .option('--layer <NAME>', "features read: 'output', a layer name (flattened) or name:pool", 'output')
    .option('--seed <S>', 'seed of the episodes', nonNegativeInt, 0)
    .option('--limit <N>', 'use at most N images of the set (IDX: the first)', positiveInt, 10000)
    .option('--json', 'print one JSON object')
    .action(async (flags: FewShotFlags, command: Command) => {
      labelledSetKind(flags.test, '--test');
      if (flags.layer === 'best')
        throw new OptionError(
          '--layer',
          'best',
          "a fixed layer here ('output', a name or name:pool): episodes hold no validation split",
        );
      await useBackend(command);
      const started = performance.now();
      const encoder = await loadEncoder(flags.model);
      const layer = parseLayerSpec(encoder, flags.layer);
      const inputShape = encoder.inputs[0]!.shape.slice(1) as number[];
      const { format } = await readRunInfo(flags.model);
      let set = await readLabelledSet(flags.test, '--test', { inputShape, format, limit: flags.limit });
      if (flags.classes) {
        const wanted = new Set(flags.classes);
        set = subset(
          set,
          set.labels.flatMap((label, i) => (wanted.has(label) ? [i] : [])),
        );
      }
      const x = embed(featureModel(encoder, layer), set.items);
      const width = x.shape[1];
      const flat = x.dataSync() as Float32Array;
      x.dispose();
      encoder.dispose();
      const features = set.items.map((_, i) => flat.slice(i * width, (i + 1) * width));
      const { ways, queries, episodes, metric, seed } = flags;
      const results: FewShotResult[] = flags.shots.map((shots) =>
        fewShotEpisodes(features, set.labels, { ways, shots, queries, episodes, metric, seed }),
      );
      const classes = [...new Set(set.labels)].sort((a, b) => a - b);
      const report = {
        layer: flags.layer,
        classes,
        items: set.labels.length,
        results,
        seconds: Math.round((performance.now() - started) / 1000),
      };
      if (flags.json) return console.log(JSON.stringify(report));
      printTable(
        results.map((r) => ({
          setting: `${r.ways}-way ${r.shots}-shot`,
          accuracy: `${r.accuracy.toFixed(3)} ± ${r.ci95.toFixed(3)}`,
          chance: r.chance,
          episodes: r.episodes,
        })),
      );
      console.log(
        `\nclasses ${classes.join(',')} (${set.labels.length} items), ${flags.metric} prototypes on ${flags.layer}`,
      );
    });
}

function shotList(value: string): number[] {
  const shots = value.split(',').map(Number);
  if (shots.some((k) => !Number.isInteger(k) || k < 1))
    throw new InvalidArgumentError(`expected positive integers separated by commas, e.g. 1,5; got "${value}".`);
  return shots;
}
