import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom, toArray } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import { crossViewRetrieval } from '../../evaluation/crossViewRetrieval.ts';
import { generateSyncedViews } from '../../fixtures/syncedViews.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { checkViewGroups, decodeViewGroup } from '../../pipeline/viewGroups.ts';
import { buildFrameEncoder } from '../../models/frameEncoder.ts';
import { selectBackend } from '../../models/backend.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

/** A 1x1 frame whose colour is a point on the unit circle at `angle` (and 0 blue): its embedding is its pixels. */
const pixel = (angle: number): Frame => ({
  data: Uint8Array.of(Math.round(127.5 + 127 * Math.cos(angle)), Math.round(127.5 + 127 * Math.sin(angle)), 0),
  width: 1,
  height: 1,
  channels: 3,
  index: 0,
  timestamp: 0,
  source: 'x',
});
// Centred, so that cosine similarity follows the angle.
const embed = (x: tf.Tensor4D) =>
  tf.tidy(() => tf.sub(tf.reshape(x, [x.shape[0], 3]), tf.tensor1d([0.5, 0.5, 0])) as tf.Tensor2D);

/** The naive reference: nearest by angle, for every ordered camera pair. */
function naive(angles: number[][][], window: number): { hit: number; meanError: number; queries: number } {
  let hits = 0;
  let errors = 0;
  let queries = 0;
  for (const moments of angles) {
    const cameras = moments[0]!.length;
    for (let i = 0; i < cameras; i++)
      for (let j = 0; j < cameras; j++) {
        if (i === j) continue;
        moments.forEach((m, q) => {
          let best = 0;
          moments.forEach((o, k) => {
            if (Math.cos(o[j]! - m[i]!) > Math.cos(moments[best]![j]! - m[i]!)) best = k;
          });
          hits += Number(Math.abs(best - q) <= window);
          errors += Math.abs(best - q);
          queries++;
        });
      }
  }
  return { hit: hits / queries, meanError: errors / queries, queries };
}

test('cross-view retrieval matches a naive nearest-neighbour reference, window and all', (t) => {
  // Recording 1: camera 1 sees moment t as camera 0 sees a shuffled moment; recording 2: three cameras, some agree.
  const shuffled = [0, 1, 2, 5, 4, 3, 6, 7];
  const angles = [
    shuffled.map((s, k) => [k * 0.7, s * 0.7]),
    [0, 1, 2, 3, 4, 5].map((k) => [k * 0.9, k * 0.9 + 0.05, (5 - k) * 0.9]),
  ];
  const recordings = angles.map((moments) => moments.map((m) => m.map(pixel)));
  const before = tf.memory().numTensors;
  for (const window of [0, 1, 2]) {
    const got = crossViewRetrieval(embed, recordings, { window, batchSize: 3 });
    const want = naive(angles, window);
    t.is(got.queries, want.queries);
    t.true(Math.abs(got.hit - want.hit) < 1e-9, `window ${window}: ${got.hit} vs ${want.hit}`);
    t.true(Math.abs(got.meanError - want.meanError) < 1e-9, `window ${window}: ${got.meanError} vs ${want.meanError}`);
  }
  t.is(tf.memory().numTensors, before);
  // 8 x 2 + 6 x 6 queries; identical views would all be found at once.
  t.is(crossViewRetrieval(embed, recordings).queries, 52);
});

test('cross-view retrieval refuses one-camera moments and a bad window', (t) => {
  t.throws(() => crossViewRetrieval(embed, [[[pixel(0)], [pixel(1)]]]), {
    instanceOf: OptionError,
    message: /two or more cameras/,
  });
  t.throws(() => crossViewRetrieval(embed, [], { window: -1 }), { instanceOf: OptionError, message: /window/ });
});

test('cross-view retrieval of an encoder on recorded camera files, as on real recordings', async (t) => {
  const dir = join(tmpdir(), 'tempo-ssl-fixtures', 'crossViewRetrieval-test');
  const { groups } = await generateSyncedViews({ dir, seed: 5, frames: 24 });
  const [group] = await checkViewGroups([groups[0]!.files]);
  const moments = await firstValueFrom(decodeViewGroup(group!, { width: 32, height: 32 }).pipe(toArray()));
  const encoder = buildFrameEncoder({ inputShape: [32, 32, 3], featureSize: 16, width: 4, blocks: 2, seed: 1 });
  const before = tf.memory().numTensors;
  const result = crossViewRetrieval((x) => encoder.predict(x) as tf.Tensor2D, [moments], { window: 1 });
  t.is(tf.memory().numTensors, before);
  encoder.dispose();
  // 24 scene frames, camera 2 at half the rate: 12 moments of 3 cameras, 6 ordered camera pairs.
  t.is(result.queries, 12 * 6);
  t.true(result.hit >= 0 && result.hit <= 1 && result.meanError >= 0);
});
