import { OptionError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';
import permutations64 from './jigsawPermutations64.json' with { type: 'json' };
import permutations100 from './jigsawPermutations100.json' with { type: 'json' };

/** Tiles of a jigsaw puzzle: a 3 x 3 grid. */
export const TILES = 9;

/** Every permutation of 0..n-1 in lexicographic order, packed n values each. */
export function allPermutations(n: number): Uint8Array {
  let count = 1;
  for (let k = 2; k <= n; k++) count *= k;
  const out = new Uint8Array(count * n);
  const perm = Array.from({ length: n }, (_, i) => i);
  for (let row = 0; row < count; row++) {
    out.set(perm, row * n);
    // Next lexicographic permutation.
    let i = n - 2;
    while (i >= 0 && perm[i]! > perm[i + 1]!) i--;
    if (i < 0) break;
    let j = n - 1;
    while (perm[j]! < perm[i]!) j--;
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    for (let a = i + 1, b = n - 1; a < b; a++, b--) [perm[a], perm[b]] = [perm[b]!, perm[a]!];
  }
  return out;
}

/** How many places two permutations differ in. */
export function hamming(a: readonly number[], b: readonly number[]): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) d++;
  return d;
}

/** The smallest Hamming distance between two permutations of a set. */
export function minimumHamming(set: readonly (readonly number[])[]): number {
  let min = Infinity;
  for (let i = 0; i < set.length; i++)
    for (let j = i + 1; j < set.length; j++) min = Math.min(min, hamming(set[i]!, set[j]!));
  return min;
}

/**
 * `count` permutations of the 9 tiles chosen by maximal average Hamming distance, as Noroozi and Favaro's
 * `maximal_hamming_distance` (their Algorithm 1): the first drawn at random (seeded: `seed`), then each next one
 * the permutation, among all 9! not yet chosen, whose mean Hamming distance to those chosen is largest. Ties (the
 * sums are integers, so there are many) go to the candidate farthest from its nearest chosen permutation, then to
 * the first in lexicographic order: the paper's argmax takes any of them; this choice keeps the mean maximal and
 * raises the set's minimum distance. Deterministic: the same `count` and `seed` give the same list.
 */
export function maximalHammingPermutations(count: number, seed = 0): number[][] {
  const all = allPermutations(TILES);
  const total = all.length / TILES;
  if (!Number.isInteger(count) || count < 2 || count > total)
    throw new OptionError('count', count, `an integer from 2 to 9! = ${total}`);
  const sums = new Float64Array(total);
  const nearest = new Uint8Array(total).fill(TILES);
  const chosen: number[][] = [];
  let next = new Rng(seed).int(total);
  for (;;) {
    const perm = Array.from(all.subarray(next * TILES, (next + 1) * TILES));
    chosen.push(perm);
    sums[next] = -Infinity;
    if (chosen.length === count) return chosen;
    let best = -1;
    for (let row = 0; row < total; row++) {
      if (sums[row] === -Infinity) continue;
      let d = 0;
      const base = row * TILES;
      for (let i = 0; i < TILES; i++) if (all[base + i] !== perm[i]) d++;
      sums[row]! += d;
      if (d < nearest[row]!) nearest[row] = d;
      if (best < 0 || sums[row]! > sums[best]! || (sums[row] === sums[best] && nearest[row]! > nearest[best]!))
        best = row;
    }
    next = best;
  }
}

/** The permutation sets shipped with the repo (made by `scripts/jigsawPermutations.ts`), by size. */
export const SHIPPED_PERMUTATIONS: Readonly<Record<number, readonly (readonly number[])[]>> = {
  64: permutations64,
  100: permutations100,
};

/**
 * The permutation set of `count`: a shipped file for 64 and 100, otherwise generated here (a few seconds for a few
 * hundred; the same list the script would write).
 */
export function jigsawPermutations(count: number): readonly (readonly number[])[] {
  return SHIPPED_PERMUTATIONS[count] ?? maximalHammingPermutations(count);
}
