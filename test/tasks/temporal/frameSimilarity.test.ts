import test from 'ava';
import { firstValueFrom, from, toArray } from 'rxjs';
import { syntheticFrames } from '../../../fixtures/frames.ts';
import { selectBackend } from '../../../models/backend.ts';
import { OptionError } from '../../../core/errors.ts';
import type { Frame } from '../../../pipeline/frame.ts';
import { Rng } from '../../../core/rng.ts';
import { frameSimilarity, sampleFrameTriplets } from '../../../tasks/temporal/frameSimilarity.ts';
import { dispose, learn, mean } from '../_learn.ts';

const SIZE = 24;
test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

/** A frame whose every byte is its own index (so samples can be traced back), of one video. */
function tagged(index: number, source: string, level = index): Frame {
  return {
    data: new Uint8Array(4 * 4 * 3).fill(level),
    width: 4,
    height: 4,
    channels: 3,
    index,
    timestamp: index / 12,
    source,
  };
}

/** Synthetic clips whose first two bytes are overwritten with the frame index and clip number, so samples trace back. */
function traceableFrames(): Frame[] {
  return syntheticFrames({ clips: 3, seed: 2, frames: 30, width: 16, height: 16 }).map((f) => {
    const data = f.data.slice();
    data[0] = f.index;
    data[1] = Number(f.source.split('-')[1]);
    return { ...f, data };
  });
}

test('positives are adjacent frames and negatives lie far away or in another video', async (t) => {
  const samples = await firstValueFrom(
    from(traceableFrames()).pipe(sampleFrameTriplets({ rng: new Rng(1) }, { negativeGap: 10 }), toArray()),
  );
  t.true(samples.length > 20);
  const back = (x: Float32Array) => ({ index: Math.round(x[0]! * 255), clip: Math.round(x[1]! * 255) });
  for (const s of samples) {
    const [a, p, n] = s.inputs.map(back) as [ReturnType<typeof back>, ReturnType<typeof back>, ReturnType<typeof back>];
    t.is(a.clip, p.clip);
    t.is(Math.abs(a.index - p.index), 1);
    t.true(n.clip !== a.clip || Math.abs(n.index - a.index) >= 10, `${a.clip}:${a.index} vs ${n.clip}:${n.index}`);
  }
});

test('no positive pair spans a scene cut', async (t) => {
  // Two shots in one video: dark frames 0..9, then a hard cut to bright frames 10..19.
  const frames = Array.from({ length: 20 }, (_, i) => tagged(i, 'cut.mp4', i < 10 ? 10 + i : 200 + i));
  const samples = await firstValueFrom(
    from(frames).pipe(sampleFrameTriplets({ rng: new Rng(2) }, { negativeGap: 4, stride: 1 }), toArray()),
  );
  t.true(samples.length > 5);
  for (const s of samples) t.is(s.inputs[0]![0]! > 0.5, s.inputs[1]![0]! > 0.5, 'anchor and positive in one shot');
});

test('the sampler is reproducible from its seed', async (t) => {
  const frames = syntheticFrames({ clips: 2, seed: 4, frames: 20, width: 16, height: 16 });
  const run = () => firstValueFrom(from(frames).pipe(frameSimilarity.sampler({ rng: new Rng(5) }), toArray()));
  const [a, b] = [await run(), await run()];
  t.deepEqual(
    a.map((s) => s.inputs[2]![0]),
    b.map((s) => s.inputs[2]![0]),
  );
});

test('bad options are rejected when the sampler is built', (t) => {
  t.throws(() => sampleFrameTriplets({ rng: new Rng(1) }, { positiveGap: 0 }), {
    instanceOf: OptionError,
    message: /positiveGap/,
  });
  t.throws(() => sampleFrameTriplets({ rng: new Rng(1) }, { positiveGap: 3, negativeGap: 2 }), {
    instanceOf: OptionError,
    message: /negativeGap/,
  });
});

test.serial('frame similarity learns: the loss falls and triplets end ranked right well above chance', async (t) => {
  const frames = syntheticFrames({ clips: 8, seed: 3, frames: 36, width: SIZE, height: SIZE });
  const learned = await learn(frameSimilarity, frames, SIZE, { steps: 150 });
  const [first, last] = [mean(learned.losses.slice(0, 20)), mean(learned.losses.slice(-30))];
  t.log(`loss ${first.toFixed(3)} -> ${last.toFixed(3)}, accuracy ${mean(learned.accuracies.slice(-30)).toFixed(3)}`);
  t.true(last < first * 0.7, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  t.true(mean(learned.accuracies.slice(-30)) > 0.75, `accuracy ${mean(learned.accuracies.slice(-30)).toFixed(3)}`);
  dispose(learned);
});
