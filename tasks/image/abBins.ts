import { OptionError } from '../../core/errors.ts';
import { rgbToLab } from '../../pipeline/labColour.ts';

/** Side of an ab bin in Lab units, the paper's grid size. */
export const AB_GRID = 10;
/** The ab plane covered by the grid: cell centres from -AB_RANGE to AB_RANGE, 23 a side. */
export const AB_RANGE = 110;
const SIDE = (2 * AB_RANGE) / AB_GRID + 1;

/** The cell of the 23 x 23 ab grid that holds (a, b), clamped to the grid: `row * 23 + column`, a along rows. */
function cellOf(a: number, b: number): number {
  const clamp = (v: number) => Math.min(SIDE - 1, Math.max(0, Math.round((v + AB_RANGE) / AB_GRID)));
  return clamp(a) * SIDE + clamp(b);
}

const centreOf = (cell: number): [number, number] => [
  Math.floor(cell / SIDE) * AB_GRID - AB_RANGE,
  (cell % SIDE) * AB_GRID - AB_RANGE,
];

/**
 * The ab bins of the grid that some sRGB colour falls in (the in-gamut bins; the paper lists 313 of its own),
 * as centres `[a, b]` in grid order (a, then b). Sweeps the RGB cube in steps of `step` levels of 255 (1: every
 * 8-bit colour, about 15 s; coarser steps find a subset).
 *
 * @example
 * inGamutBins(1).length; // 261 (fewer than the paper's 313; see colorization's TSDoc)
 */
export function inGamutBins(step = 1): [number, number][] {
  if (!Number.isInteger(step) || step < 1 || step > 255)
    throw new OptionError('step', step, 'an integer from 1 to 255');
  const hit = new Uint8Array(SIDE * SIDE);
  const levels: number[] = [];
  for (let v = 0; v < 255; v += step) levels.push(v / 255);
  levels.push(1);
  for (const r of levels)
    for (const g of levels)
      for (const b of levels) {
        const [, a, bb] = rgbToLab(r, g, b);
        hit[cellOf(a, bb)] = 1;
      }
  const bins: [number, number][] = [];
  hit.forEach((h, cell) => h && bins.push(centreOf(cell)));
  return bins;
}

/**
 * The ab quantization of a set of bins: each ab colour to its nearest bin (hard), or to a distribution over its
 * 5 nearest bins weighted by a Gaussian of their distance (sigma 5), the paper's soft encoding of targets.
 *
 * @example
 * const q = new AbQuantizer(bins);
 * q.nearest(0, 0); // the index of the grey bin [0, 0]
 */
export class AbQuantizer {
  /** Number of bins (Q). */
  readonly size: number;
  readonly #bins: readonly (readonly [number, number])[];
  /** For each grid cell, the index of the nearest bin. */
  readonly #nearestOfCell: Int32Array;
  /** For each grid cell, the bins within two cells of it: where the 5 nearest bins of a colour in it are found. */
  readonly #near: number[][];

  constructor(bins: readonly (readonly [number, number])[]) {
    if (bins.length < 2) throw new OptionError('bins', bins.length, 'at least 2 ab bins');
    this.size = bins.length;
    this.#bins = bins;
    this.#nearestOfCell = new Int32Array(SIDE * SIDE);
    this.#near = [];
    for (let cell = 0; cell < SIDE * SIDE; cell++) {
      const [a, b] = centreOf(cell);
      const order = bins.map((_, q) => q).sort((p, q) => this.#distance2(p, a, b) - this.#distance2(q, a, b));
      this.#nearestOfCell[cell] = order[0]!;
      // Bins nearer than the 9th nearest of the cell's centre, plus a margin of one cell: holds the 5 nearest of
      // every colour inside the cell.
      const reach = Math.sqrt(this.#distance2(order[Math.min(8, order.length - 1)]!, a, b)) + AB_GRID;
      this.#near.push(order.filter((q) => this.#distance2(q, a, b) <= reach * reach));
    }
  }

  #distance2(q: number, a: number, b: number): number {
    const [qa, qb] = this.#bins[q]!;
    return (qa - a) ** 2 + (qb - b) ** 2;
  }

  /** The centre `[a, b]` of bin `q`. */
  centre(q: number): readonly [number, number] {
    return this.#bins[q]!;
  }

  /** The index of the bin nearest to (a, b). */
  nearest(a: number, b: number): number {
    const candidates = this.#near[cellOf(a, b)]!;
    let best = this.#nearestOfCell[cellOf(a, b)]!;
    for (const q of candidates) if (this.#distance2(q, a, b) < this.#distance2(best, a, b)) best = q;
    return best;
  }

  /**
   * Adds `scale` x the soft encoding of (a, b) to `out[offset .. offset + size)`: the 5 nearest bins weighted by
   * exp(-d^2 / (2 sigma^2)), sigma 5, normalized to sum to 1 (the paper's). Read from a table over the ab plane at
   * 1-unit steps (a and b rounded: half a unit at most, small beside sigma), built on first use.
   */
  addSoft(a: number, b: number, out: Float32Array, offset: number, scale = 1): void {
    this.#table ??= this.#softTable();
    const side = 2 * AB_RANGE + 1;
    const clamp = (v: number) => Math.min(side - 1, Math.max(0, Math.round(v) + AB_RANGE));
    const at = (clamp(a) * side + clamp(b)) * SOFT_NEIGHBOURS;
    for (let k = 0; k < SOFT_NEIGHBOURS; k++)
      out[offset + this.#table.bins[at + k]!]! += scale * this.#table.weights[at + k]!;
  }

  #table?: { bins: Int16Array; weights: Float32Array };

  /** The soft encoding of every integer (a, b) of the grid's range. */
  #softTable(): { bins: Int16Array; weights: Float32Array } {
    const side = 2 * AB_RANGE + 1;
    const bins = new Int16Array(side * side * SOFT_NEIGHBOURS);
    const weights = new Float32Array(side * side * SOFT_NEIGHBOURS);
    for (let i = 0; i < side; i++) {
      for (let j = 0; j < side; j++) {
        const [a, b] = [i - AB_RANGE, j - AB_RANGE];
        const near = [...this.#near[cellOf(a, b)]!].sort((p, q) => this.#distance2(p, a, b) - this.#distance2(q, a, b));
        const picked = near.slice(0, SOFT_NEIGHBOURS);
        const w = picked.map((q) => Math.exp(-this.#distance2(q, a, b) / (2 * SOFT_SIGMA * SOFT_SIGMA)));
        const total = w.reduce((s, x) => s + x, 0);
        const at = (i * side + j) * SOFT_NEIGHBOURS;
        picked.forEach((q, k) => ((bins[at + k] = q), (weights[at + k] = w[k]! / total)));
      }
    }
    return { bins, weights };
  }
}

/** Bins a target colour is soft-encoded on, and the Gaussian's sigma in ab units (the paper's 5 and 5). */
const SOFT_NEIGHBOURS = 5;
const SOFT_SIGMA = 5;

/** Options of `rebalancingWeights`. */
export interface RebalancingOptions {
  /** Standard deviation of the Gaussian that smooths the empirical distribution, in ab units. Default 5 (the paper). */
  sigma?: number;
  /** Weight of the uniform distribution mixed in. Default 0.5 (the paper's lambda). */
  lambda?: number;
}

/**
 * The paper's class rebalancing (eq. 3-4): the empirical distribution of ab bins `counts` smoothed by a Gaussian
 * kernel over the bin centres (`prior`), mixed with the uniform distribution and inverted,
 * w ∝ ((1 - lambda) p + lambda / Q)^-1, scaled so that the expected weight under the prior is 1.
 *
 * @example
 * const { prior, weights } = rebalancingWeights(counts, bins); // sum(prior[q] * weights[q]) === 1
 */
export function rebalancingWeights(
  counts: ArrayLike<number>,
  bins: readonly (readonly [number, number])[],
  options: RebalancingOptions = {},
): { prior: number[]; weights: number[] } {
  const { sigma = 5, lambda = 0.5 } = options;
  if (counts.length !== bins.length)
    throw new OptionError('counts', counts.length, `one count per bin (${bins.length})`);
  if (!(lambda >= 0 && lambda <= 1)) throw new OptionError('lambda', lambda, 'a number from 0 to 1');
  const total = Array.from(counts).reduce((s, c) => s + c, 0);
  if (!(total > 0)) throw new OptionError('counts', total, 'some pixels counted (a positive total)');
  const smoothed = bins.map(([a, b]) => {
    let sum = 0;
    let norm = 0;
    bins.forEach(([qa, qb], q) => {
      const k = Math.exp(-((qa - a) ** 2 + (qb - b) ** 2) / (2 * sigma * sigma));
      sum += (k * counts[q]!) / total;
      norm += k;
    });
    return sum / norm;
  });
  const mass = smoothed.reduce((s, p) => s + p, 0);
  const prior = smoothed.map((p) => p / mass);
  const inverse = prior.map((p) => 1 / ((1 - lambda) * p + lambda / bins.length));
  const expected = prior.reduce((s, p, q) => s + p * inverse[q]!, 0);
  return { prior, weights: inverse.map((w) => w / expected) };
}

/**
 * Annealed-mean decoding (the paper's eq. 5): the mean ab of a distribution over bins sharpened by temperature `t`
 * (p^(1/t), renormalized): t = 1 gives the mean, t -> 0 the mode; the paper's 0.38 keeps the mode's vibrancy and
 * the mean's spatial consistency. `probabilities` holds `cells * Q` values; returns `cells * 2` (a, b pairs).
 *
 * @example
 * annealedMean(probabilities, quantizer, 0.38);
 */
export function annealedMean(probabilities: ArrayLike<number>, quantizer: AbQuantizer, t = 0.38): Float32Array {
  const q = quantizer.size;
  if (probabilities.length % q !== 0)
    throw new OptionError('probabilities', probabilities.length, `a multiple of the bin count ${q}`);
  if (!(t > 0)) throw new OptionError('temperature', t, 'a positive number (0.38 in the paper)');
  const cells = probabilities.length / q;
  const out = new Float32Array(2 * cells);
  for (let c = 0; c < cells; c++) {
    // log-space with the max taken out, so that small temperatures do not underflow.
    let max = -Infinity;
    for (let k = 0; k < q; k++) max = Math.max(max, Math.log(probabilities[c * q + k]!) / t);
    let total = 0;
    let a = 0;
    let b = 0;
    for (let k = 0; k < q; k++) {
      const w = Math.exp(Math.log(probabilities[c * q + k]!) / t - max);
      const [ca, cb] = quantizer.centre(k);
      total += w;
      a += w * ca;
      b += w * cb;
    }
    out[2 * c] = a / total;
    out[2 * c + 1] = b / total;
  }
  return out;
}

/**
 * Adds the pixels of an HWC uint8 RGB image to `counts` (one per bin of `quantizer`), each pixel to its nearest
 * bin: the empirical ab distribution that `rebalancingWeights` smooths.
 */
export function countAbBins(rgb: Uint8Array, quantizer: AbQuantizer, counts: Float64Array): void {
  for (let i = 0; i < rgb.length; i += 3) {
    const [, a, b] = rgbToLab(rgb[i]! / 255, rgb[i + 1]! / 255, rgb[i + 2]! / 255);
    counts[quantizer.nearest(a, b)]!++;
  }
}
