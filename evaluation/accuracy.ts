/** Fraction of `predicted` equal to `truth` (index by index); NaN for no items, so an empty split never passes. */
export function accuracy(predicted: ArrayLike<number>, truth: ArrayLike<number>): number {
  let right = 0;
  for (let i = 0; i < truth.length; i++) if (predicted[i] === truth[i]) right++;
  return right / truth.length;
}
