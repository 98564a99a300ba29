import { OptionError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';

/** Options of `fewShotEpisodes`. */
export interface FewShotOptions {
  /** Classes an episode draws (N of N-way). Default 5. */
  ways?: number;
  /** Labelled examples of each class an episode gives (K of K-shot). Default 1. */
  shots?: number;
  /** Query items of each class an episode scores. Default 15 (the usual protocol of Vinyals et al. 2016). */
  queries?: number;
  /** Episodes drawn. Default 600. */
  episodes?: number;
  /** Distance of a query to a class prototype: 'cosine' (default, as Gidaris et al. 2019) or 'euclidean' (as Snell et al. 2017). */
  metric?: 'cosine' | 'euclidean';
  /** Seed of the episodes. Default 0. */
  seed?: number;
}

/** What `fewShotEpisodes` reports. */
export interface FewShotResult {
  ways: number;
  shots: number;
  queries: number;
  episodes: number;
  metric: 'cosine' | 'euclidean';
  /** Mean accuracy over the episodes, in [0, 1]. */
  accuracy: number;
  /** Half-width of the 95% confidence interval of the mean: 1.96 x standard deviation / sqrt(episodes). */
  ci95: number;
  /** Accuracy of guessing: 1 / ways. */
  chance: number;
}

/**
 * N-way K-shot episodes with a prototype classifier on frozen features: each episode draws `ways` classes among
 * those of `labels`, then `shots` support and `queries` query items of each (disjoint, without replacement); each
 * class's prototype is the mean of its support features (L2-normalized first with 'cosine'), and a query takes the
 * class of the nearest prototype. Reported: the mean accuracy over episodes with its 95% confidence interval, the
 * protocol of Vinyals et al. 2016 and Snell et al. 2017 (prototypes) used by Gidaris et al. 2019 on novel classes.
 * `features` holds one `Float32Array` a item, all of one length.
 *
 * @throws OptionError when fewer than `ways` classes have `shots + queries` items.
 * @example
 * const result = fewShotEpisodes(features, labels, { ways: 5, shots: 1 }); // { accuracy, ci95, chance: 0.2, ... }
 */
export function fewShotEpisodes(
  features: readonly Float32Array[],
  labels: readonly number[],
  options: FewShotOptions = {},
): FewShotResult {
  const { ways = 5, shots = 1, queries = 15, episodes = 600, metric = 'cosine', seed = 0 } = options;
  for (const [name, value] of [
    ['--ways', ways],
    ['--shots', shots],
    ['--queries', queries],
    ['--episodes', episodes],
  ] as const)
    if (!Number.isInteger(value) || value < 1) throw new OptionError(name, value, 'a positive integer');
  if (ways < 2) throw new OptionError('--ways', ways, 'at least 2 classes an episode');
  if (metric !== 'cosine' && metric !== 'euclidean')
    throw new OptionError('--metric', metric, "'cosine' or 'euclidean'");
  const byClass = new Map<number, number[]>();
  labels.forEach((label, i) => {
    const members = byClass.get(label) ?? [];
    members.push(i);
    byClass.set(label, members);
  });
  const usable = [...byClass.keys()].filter((c) => byClass.get(c)!.length >= shots + queries).sort((a, b) => a - b);
  if (usable.length < ways) {
    throw new OptionError(
      '--ways',
      ways,
      `at most ${usable.length}: the classes with ${shots + queries} items (shots + queries) in the set (give more items, more --classes, or fewer --shots/--queries)`,
    );
  }
  const rows = metric === 'cosine' ? features.map(unit) : features;
  const rng = new Rng(seed);
  const accuracies: number[] = [];
  for (let e = 0; e < episodes; e++) {
    const classes = rng.shuffle([...usable]).slice(0, ways);
    const drawn = classes.map((c) => rng.shuffle([...byClass.get(c)!]).slice(0, shots + queries));
    const prototypes = drawn.map((items) => meanOf(items.slice(0, shots).map((i) => rows[i]!)));
    let right = 0;
    drawn.forEach((items, truth) => {
      for (const i of items.slice(shots)) if (nearest(rows[i]!, prototypes, metric) === truth) right++;
    });
    accuracies.push(right / (ways * queries));
  }
  const mean = accuracies.reduce((a, b) => a + b, 0) / episodes;
  const variance = accuracies.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, episodes - 1);
  return {
    ways,
    shots,
    queries,
    episodes,
    metric,
    accuracy: mean,
    ci95: (1.96 * Math.sqrt(variance)) / Math.sqrt(episodes),
    chance: 1 / ways,
  };
}

function unit(x: Float32Array): Float32Array {
  let norm = 0;
  for (const v of x) norm += v * v;
  norm = Math.sqrt(norm) || 1;
  return x.map((v) => v / norm);
}

function meanOf(rows: Float32Array[]): Float32Array {
  const out = new Float32Array(rows[0]!.length);
  for (const row of rows) for (let d = 0; d < out.length; d++) out[d]! += row[d]! / rows.length;
  return out;
}

/** Index of the prototype nearest to `x`: the largest cosine, or the smallest squared Euclidean distance. */
function nearest(x: Float32Array, prototypes: Float32Array[], metric: 'cosine' | 'euclidean'): number {
  let best = 0;
  let bestScore = -Infinity;
  prototypes.forEach((p, k) => {
    let dot = 0;
    let distance = 0;
    let norm = 0;
    for (let d = 0; d < x.length; d++) {
      dot += x[d]! * p[d]!;
      norm += p[d]! * p[d]!;
      distance += (x[d]! - p[d]!) ** 2;
    }
    const score = metric === 'cosine' ? dot / (Math.sqrt(norm) || 1) : -distance;
    if (score > bestScore) [best, bestScore] = [k, score];
  });
  return best;
}
