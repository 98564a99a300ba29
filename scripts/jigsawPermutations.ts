// Writes the jigsaw permutation sets shipped in tasks/image/ (Noroozi and Favaro 2016, maximal average Hamming
// distance): `npx tsx scripts/jigsawPermutations.ts [count...]` (default 64 100). Deterministic: seed 0, so a rerun
// writes the same files (test/tasks/image/jigsaw.test.ts checks that it does).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { maximalHammingPermutations, minimumHamming } from '../tasks/image/jigsawPermutations.ts';

/** The file text of a set: one permutation a line, as JSON laid out as Prettier lays it out. */
export function permutationFileText(set: readonly (readonly number[])[]): string {
  return '[\n' + set.map((p) => '  [' + p.join(', ') + ']').join(',\n') + '\n]\n';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const counts = process.argv.slice(2).map(Number);
  for (const count of counts.length > 0 ? counts : [64, 100]) {
    const set = maximalHammingPermutations(count);
    const path = fileURLToPath(new URL(`../tasks/image/jigsawPermutations${count}.json`, import.meta.url));
    writeFileSync(path, permutationFileText(set));
    console.log(`${path}: ${count} permutations, minimum Hamming distance ${minimumHamming(set)}`);
  }
}
