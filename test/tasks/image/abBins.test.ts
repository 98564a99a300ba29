// issue 12: colorization's ab bins, soft encoding, class rebalancing and annealed-mean decoding, and the shipped
// bin file that scripts/colorizationBins.ts writes.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { Rng } from '../../../core/rng.ts';
import { rgbToLab } from '../../../pipeline/labColour.ts';
import {
  AbQuantizer,
  annealedMean,
  countAbBins,
  inGamutBins,
  rebalancingWeights,
} from '../../../tasks/image/abBins.ts';
import type { ColourBins } from '../../../tasks/image/colorization.ts';

const shipped = JSON.parse(
  readFileSync(new URL('../../../tasks/image/colorizationBins.json', import.meta.url), 'utf8'),
) as ColourBins;
const quantizer = new AbQuantizer(shipped.bins);

test('the shipped bins are the 10-unit ab cells that sRGB colours fall in', (t) => {
  t.is(shipped.grid, 10);
  t.is(shipped.bins.length, 261);
  t.true(shipped.bins.every(([a, b]) => a % 10 === 0 && b % 10 === 0 && Math.abs(a) <= 110 && Math.abs(b) <= 110));
  // A coarse sweep of the RGB cube (16 levels a channel) finds only shipped bins, and most of them.
  const coarse = inGamutBins(17);
  const key = ([a, b]: readonly number[]) => `${a},${b}`;
  const all = new Set(shipped.bins.map(key));
  t.true(coarse.every((bin) => all.has(key(bin))));
  t.true(coarse.length > 0.9 * shipped.bins.length, `${coarse.length}`);
  // Pure colours land in their bins: grey in [0, 0], red near (80, 67).
  t.deepEqual(quantizer.centre(quantizer.nearest(0, 0)), [0, 0]);
  const [, a, b] = rgbToLab(1, 0, 0);
  t.deepEqual(quantizer.centre(quantizer.nearest(a, b)), [80, 70]);
});

test('the shipped prior and weights are what rebalancingWeights makes of the shipped counts', (t) => {
  t.is(
    shipped.counts.reduce((s, c) => s + c, 0),
    shipped.source.pixels,
  );
  t.is(shipped.source.pixels, shipped.source.frames * shipped.source.size ** 2);
  const { prior, weights } = rebalancingWeights(shipped.counts, shipped.bins, {
    sigma: shipped.sigma,
    lambda: shipped.lambda,
  });
  t.true(prior.every((p, q) => Math.abs(p - shipped.prior[q]!) <= 1e-7 * Math.max(1, p)));
  t.true(weights.every((w, q) => Math.abs(w - shipped.weights[q]!) <= 1e-6 * w));
  // The paper's normalisation: the expected weight under the smoothed prior is 1.
  t.true(Math.abs(shipped.prior.reduce((s, p, q) => s + p * shipped.weights[q]!, 0) - 1) < 1e-5);
  // Rare colours weigh more than common ones: grey, the commonest, less than 1.
  const grey = quantizer.nearest(0, 0);
  t.true(shipped.weights[grey]! < 1);
  t.true(Math.max(...shipped.weights) > 1);
});

test('rebalancingWeights matches a naive reference, and lambda 1 weighs every bin alike', (t) => {
  const bins: [number, number][] = [
    [0, 0],
    [0, 10],
    [10, 0],
    [30, 30],
  ];
  const counts = [70, 20, 10, 0];
  const sigma = 5;
  const smoothed = bins.map(([a, b]) => {
    const k = bins.map(([qa, qb]) => Math.exp(-((qa - a) ** 2 + (qb - b) ** 2) / (2 * sigma * sigma)));
    return k.reduce((s, v, q) => s + (v * counts[q]!) / 100, 0) / k.reduce((s, v) => s + v, 0);
  });
  const prior = smoothed.map((p) => p / smoothed.reduce((s, v) => s + v, 0));
  const raw = prior.map((p) => 1 / (0.5 * p + 0.5 / 4));
  const scale = prior.reduce((s, p, q) => s + p * raw[q]!, 0);
  const got = rebalancingWeights(counts, bins);
  got.prior.forEach((p, q) => t.true(Math.abs(p - prior[q]!) < 1e-12));
  got.weights.forEach((w, q) => t.true(Math.abs(w - raw[q]! / scale) < 1e-12));
  t.true(rebalancingWeights(counts, bins, { lambda: 1 }).weights.every((w) => Math.abs(w - 1) < 1e-12));
});

test('nearest and the soft encoding agree with a naive search over every bin', (t) => {
  const rng = new Rng(4);
  for (let i = 0; i < 300; i++) {
    const [a, b] = [Math.round(180 * rng.next() - 90), Math.round(200 * rng.next() - 105)];
    const order = shipped.bins
      .map(([qa, qb], q) => ({ q, d: (qa - a) ** 2 + (qb - b) ** 2 }))
      .sort((x, y) => x.d - y.d);
    const [ca, cb] = quantizer.centre(quantizer.nearest(a, b));
    t.is((ca - a) ** 2 + (cb - b) ** 2, order[0]!.d, `nearest of (${a}, ${b})`);
    const out = new Float32Array(quantizer.size);
    quantizer.addSoft(a, b, out, 0);
    const five = order.slice(0, 5);
    const w = five.map(({ d }) => Math.exp(-d / 50));
    const total = w.reduce((s, v) => s + v, 0);
    t.true(Math.abs(out.reduce((s, v) => s + v, 0) - 1) < 1e-5);
    // Ties at the fifth place may pick either bin: compare the weights, sorted.
    const want = w.map((v) => v / total).sort();
    const got = [...out].filter((v) => v > 0).sort();
    t.true(
      want.every((v, k) => Math.abs(v - got[k]!) < 1e-5),
      `(${a}, ${b})`,
    );
  }
});

test('annealed mean: temperature 1 is the mean, a small one the mode, 0.38 in between', (t) => {
  const probabilities = new Float32Array(quantizer.size);
  const [red, grey] = [quantizer.nearest(80, 70), quantizer.nearest(0, 0)];
  probabilities.fill(0);
  probabilities[red] = 0.4;
  probabilities[grey] = 0.6;
  const mean = annealedMean(probabilities, quantizer, 1);
  t.true(Math.abs(mean[0]! - 0.4 * 80) < 1e-3 && Math.abs(mean[1]! - 0.4 * 70) < 1e-3);
  const mode = annealedMean(probabilities, quantizer, 0.01);
  t.true(Math.abs(mode[0]!) < 1e-3 && Math.abs(mode[1]!) < 1e-3);
  const annealed = annealedMean(probabilities, quantizer);
  const share = 0.4 ** (1 / 0.38) / (0.4 ** (1 / 0.38) + 0.6 ** (1 / 0.38));
  t.true(Math.abs(annealed[0]! - share * 80) < 1e-3 && annealed[0]! < mean[0]!);
});

test('countAbBins counts each pixel in its nearest bin', (t) => {
  const image = Uint8Array.of(255, 0, 0, 128, 128, 128, 255, 0, 0);
  const counts = new Float64Array(quantizer.size);
  countAbBins(image, quantizer, counts);
  t.is(counts[quantizer.nearest(80, 70)], 2);
  t.is(counts[quantizer.nearest(0, 0)], 1);
  t.is(
    counts.reduce((s, c) => s + c, 0),
    3,
  );
});
