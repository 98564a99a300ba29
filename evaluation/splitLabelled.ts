import { OptionError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';
import type { LabelledItems } from './linearProbe.ts';

/**
 * Splits labelled items into train and test, stratified by label, reproducibly from `seed`: about
 * `testFraction` of each label's keys go to test, at least one, but never the last one (every label keeps a
 * training key). `groups` (e.g. the video each frame came from) keeps every group on one side, so frames of one
 * clip never sit on both sides; a group takes the label of its first item. Without groups each item is a key.
 *
 * @example
 * const { train, test } = splitLabelled({ items, labels }, 0.3, 0, videoOfEachFrame);
 */
export function splitLabelled<T extends LabelledItems>(
  data: T & { groups?: string[] },
  testFraction: number,
  seed: number,
  groups: string[] | undefined = data.groups,
): { train: T & { groups?: string[] }; test: T & { groups?: string[] } } {
  if (!(testFraction > 0 && testFraction < 1))
    throw new OptionError('testFraction', testFraction, 'a number in (0, 1)');
  const rng = new Rng(seed);
  const keys = groups ?? data.items.map((_, i) => String(i));
  const byLabel = new Map<number, string[]>();
  const seen = new Set<string>();
  keys.forEach((key, i) => {
    if (seen.has(key)) return;
    seen.add(key);
    byLabel.set(data.labels[i]!, [...(byLabel.get(data.labels[i]!) ?? []), key]);
  });
  const testKeys = new Set<string>();
  for (const members of [...byLabel.entries()].sort((a, b) => a[0] - b[0]).map(([, m]) => m)) {
    rng.shuffle(members);
    const n = Math.max(1, Math.round(members.length * testFraction));
    members.slice(0, Math.min(n, members.length - 1)).forEach((key) => testKeys.add(key));
  }
  const train: number[] = [];
  const test: number[] = [];
  keys.forEach((key, i) => (testKeys.has(key) ? test : train).push(i));
  return { train: subset(data, train, groups), test: subset(data, test, groups) };
}

/**
 * Indices of `perClass` items of each label, drawn without replacement from `seed` (every item of a label that
 * has fewer). The few-label protocol draws its training set with this.
 */
export function takePerClass(labels: readonly number[], perClass: number, seed: number): number[] {
  if (!Number.isInteger(perClass) || perClass < 1) throw new OptionError('perClass', perClass, 'a positive integer');
  const rng = new Rng(seed);
  const byLabel = new Map<number, number[]>();
  labels.forEach((label, i) => byLabel.set(label, [...(byLabel.get(label) ?? []), i]));
  return [...byLabel.entries()]
    .sort((a, b) => a[0] - b[0])
    .flatMap(([, members]) => rng.shuffle(members).slice(0, perClass))
    .sort((a, b) => a - b);
}

/** The items at `indices` (with their labels and, when given, groups). */
export function subset<T extends LabelledItems>(
  data: T,
  indices: readonly number[],
  groups?: string[],
): T & { groups?: string[] } {
  const out = {
    ...data,
    items: indices.map((i) => data.items[i]!),
    labels: indices.map((i) => data.labels[i]!),
  } as T & { groups?: string[] };
  if (groups) out.groups = indices.map((i) => groups[i]!);
  else delete out.groups;
  return out;
}
