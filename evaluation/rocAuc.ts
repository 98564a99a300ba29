/**
 * ROC AUC (area under the receiver operating characteristic curve) as the Mann-Whitney U statistic: the
 * probability that a randomly drawn positive scores above a randomly drawn negative, ties counting half.
 * Computed from midranks in O(n log n). NaN when either side is empty.
 *
 * @example
 * rocAuc([0.9, 0.8], [0.1, 0.8]); // (1 + 1 + 1 + 0.5) / 4 = 0.875
 */
export function rocAuc(positives: readonly number[], negatives: readonly number[]): number {
  const all = [...positives.map((s) => [s, 1] as const), ...negatives.map((s) => [s, 0] as const)].sort(
    (a, b) => a[0] - b[0],
  );
  let rankSum = 0;
  for (let i = 0; i < all.length;) {
    // Tied scores share the mean of the ranks they span (1-based ranks i + 1 .. j).
    let j = i;
    while (j < all.length && all[j]![0] === all[i]![0]) j++;
    const rank = (i + j + 1) / 2;
    for (let k = i; k < j; k++) if (all[k]![1] === 1) rankSum += rank;
    i = j;
  }
  const p = positives.length;
  return (rankSum - (p * (p + 1)) / 2) / (p * negatives.length);
}
