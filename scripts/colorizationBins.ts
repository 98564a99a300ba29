// Writes tasks/image/colorizationBins.json: colorization's ab bins (the in-gamut cells of a 10-unit ab grid) and
// their class-rebalancing weights from the ab distribution of real video frames (Zhang, Isola, Efros 2016, sec. 2.2).
// Deterministic: the same videos give the same file.
//
//   npx tsx scripts/colorizationBins.ts [videos...]   (default: every video in $TEMPO_DATA/video, else ../shared/data/video)
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lastValueFrom, tap } from 'rxjs';
import { writeFileAtomic } from '../core/atomicWrite.ts';
import { decodeFrames } from '../pipeline/decodeFrames.ts';
import { AB_GRID, AbQuantizer, countAbBins, inGamutBins, rebalancingWeights } from '../tasks/image/abBins.ts';
import type { ColourBins } from '../tasks/image/colorization.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const SIZE = 64;
const FPS = 6;
const SIGMA = 5;
const LAMBDA = 0.5;

const dataDir = process.env.TEMPO_DATA ?? join(repoRoot, '..', 'shared', 'data');
const args = process.argv.slice(2);
const videos =
  args.length > 0
    ? args
    : readdirSync(join(dataDir, 'video'))
        .sort()
        .map((n) => join(dataDir, 'video', n));

const bins = inGamutBins(1);
const quantizer = new AbQuantizer(bins);
const counts = new Float64Array(bins.length);
let frames = 0;
for (const video of videos) {
  await lastValueFrom(
    decodeFrames(video, { width: SIZE, height: SIZE, fps: FPS }).pipe(
      tap((frame) => (countAbBins(frame.data, quantizer, counts), frames++)),
    ),
  );
}
const { prior, weights } = rebalancingWeights(counts, bins, { sigma: SIGMA, lambda: LAMBDA });
const round = (x: number) => Number(x.toPrecision(8));
const file: ColourBins = {
  grid: AB_GRID,
  source: {
    inputs: videos.map((v) => relative(dataDir, v)),
    frames,
    pixels: counts.reduce((s, c) => s + c, 0),
    size: SIZE,
    fps: FPS,
  },
  sigma: SIGMA,
  lambda: LAMBDA,
  bins,
  counts: Array.from(counts),
  prior: prior.map(round),
  weights: weights.map(round),
};
const out = join(repoRoot, 'tasks', 'image', 'colorizationBins.json');
await writeFileAtomic(out, JSON.stringify(file) + '\n');
console.log(
  `${out}: ${bins.length} bins, ${frames} frames of ${videos.length} videos, weights ${Math.min(...weights).toFixed(3)}..${Math.max(...weights).toFixed(3)}`,
);
