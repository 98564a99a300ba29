import test from 'ava';
import { firstValueFrom, from, toArray } from 'rxjs';
import { syntheticFrames } from '../../../fixtures/frames.ts';
import { selectBackend } from '../../../models/backend.ts';
import { OptionError } from '../../../core/errors.ts';
import type { Frame } from '../../../pipeline/frame.ts';
import { Rng } from '../../../core/rng.ts';
import { frameSimilarity, sampleFrameTriplets } from '../../../tasks/temporal/frameSimilarity.ts';
import { frameToFloat } from '../../../pipeline/frame.ts';
import { meanColour, rankedRight, scoreHeldOut } from './_heldOut.ts';

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

test('positives are adjacent frames and negatives lie far away in the same video', async (t) => {
  const samples = await firstValueFrom(
    from(traceableFrames()).pipe(sampleFrameTriplets({ rng: new Rng(1) }, { negativeGap: 10 }), toArray()),
  );
  t.true(samples.length > 20);
  const back = (x: Float32Array) => ({ index: Math.round(x[0]! * 255), clip: Math.round(x[1]! * 255) });
  for (const s of samples) {
    const [a, p, n] = s.inputs.map(back) as [ReturnType<typeof back>, ReturnType<typeof back>, ReturnType<typeof back>];
    t.is(a.clip, p.clip);
    t.is(Math.abs(a.index - p.index), 1);
    t.is(n.clip, a.clip, 'the negative comes from the anchor video');
    t.true(Math.abs(n.index - a.index) >= 10, `${a.clip}:${a.index} vs ${n.clip}:${n.index}`);
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

const SIZE = 20;

test.serial(
  'frame similarity learns on held-out clips, where colour alone cannot, and the broken control does not',
  async (t) => {
    // 48 training clips and 12 held-out ones of 36 frames. Negatives come from the anchor's own video, so they share
    // its colours: only where the shape is tells a near frame from a far one.
    const clips = (count: number, seed: number) =>
      syntheticFrames({ clips: count, seed, frames: 36, width: SIZE, height: SIZE });
    const sample = (frames: Frame[], seed: number) =>
      firstValueFrom(from(frames).pipe(sampleFrameTriplets({ rng: new Rng(seed) }, { stride: 1 }), toArray()));
    const training = clips(48, 10);
    const pool = await sample(training, 0);
    const heldOut = await sample(clips(12, 500), 99);
    // The broken control: each positive replaced by a random frame of the same clip.
    const rng = new Rng(5);
    const byClip = new Map<string, Frame[]>();
    for (const f of training) byClip.set(f.source, [...(byClip.get(f.source) ?? []), f]);
    const broken = pool.map((s) => {
      const frames = byClip.get(s.source!)!;
      return { ...s, inputs: [s.inputs[0]!, frameToFloat(frames[rng.int(frames.length)]!), s.inputs[2]!] };
    });
    const train = { steps: 300 };
    const learned = await scoreHeldOut(frameSimilarity, pool, heldOut, SIZE, train);
    const control = await scoreHeldOut(frameSimilarity, broken, heldOut, SIZE, train);
    const colour = rankedRight(heldOut, meanColour);
    const pixels = rankedRight(heldOut, (x) => Array.from(x));
    const baseline = Math.max(0.5, colour, learned.baseline);
    const margin = 0.1;
    t.log(
      `${pool.length} training, ${heldOut.length} held-out triplets: colour alone ${colour.toFixed(3)}, raw pixels ` +
        `${pixels.toFixed(3)}, untrained ${learned.baseline.toFixed(3)}, trained ${learned.trained.toFixed(3)}, ` +
        `broken control ${control.trained.toFixed(3)}`,
    );
    t.true(colour < 0.6, `colour alone ranks ${colour.toFixed(3)} of held-out triplets right`);
    t.true(
      learned.trained > baseline + margin,
      `trained ${learned.trained.toFixed(3)} vs baseline ${baseline.toFixed(3)}`,
    );
    t.false(control.trained > baseline + margin, `broken control ${control.trained.toFixed(3)} passed`);
  },
);
