import test from 'ava';
import { firstValueFrom, from, toArray } from 'rxjs';
import { syntheticFrames } from '../../../fixtures/frames.ts';
import { renderSyntheticClip } from '../../../fixtures/renderSyntheticClip.ts';
import { selectBackend } from '../../../models/backend.ts';
import { OptionError } from '../../../core/errors.ts';
import { Rng } from '../../../core/rng.ts';
import {
  pickMovingPatch,
  sampleTrackedPatches,
  trackPatch,
  trackPatches,
} from '../../../tasks/temporal/trackPatches.ts';
import { dispose, learn, mean } from '../_learn.ts';

const SIZE = 24;
test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

test('the picked patch covers the moving shape and block matching follows it', (t) => {
  const options = { width: 48, height: 48, frames: 6, speed: [2, 3] as [number, number] };
  const frames = syntheticFrames({ clips: 1, seed: 21, ...options });
  const truth = renderSyntheticClip({ seed: 21, ...options }).trajectory;
  const side = 20;
  const start = pickMovingPatch(frames[0]!, frames[1]!, side, new Rng(1));
  t.true(start.motion > 0.02);
  // The shape's centre lies inside the picked patch.
  t.true(
    Math.abs(start.x + side / 2 - truth[0]!.x) < side / 2 && Math.abs(start.y + side / 2 - truth[0]!.y) < side / 2,
  );
  const track = trackPatch(frames.slice(0, 5), start, side, 6);
  for (let k = 1; k < 5; k++) {
    const moved = { x: track[k]!.x - start.x, y: track[k]!.y - start.y };
    const truthMoved = { x: truth[k]!.x - truth[0]!.x, y: truth[k]!.y - truth[0]!.y };
    t.true(
      Math.hypot(moved.x - truthMoved.x, moved.y - truthMoved.y) < 2.5,
      `frame ${k}: tracked ${JSON.stringify(moved)}, true ${JSON.stringify(truthMoved)}`,
    );
  }
});

test('negatives come from other videos and the sampler is reproducible', async (t) => {
  const frames = syntheticFrames({ clips: 3, seed: 8, frames: 20, width: 16, height: 16 });
  const run = () => firstValueFrom(from(frames).pipe(trackPatches.sampler({ rng: new Rng(4) }), toArray()));
  const [a, b] = [await run(), await run()];
  t.true(a.length >= 6);
  t.deepEqual(
    a.map((s) => s.inputs[2]![5]),
    b.map((s) => s.inputs[2]![5]),
  );
  t.false(
    a.some((s) => s.source === 'synthetic-8'),
    'the first video has no other video to draw negatives from',
  );
  t.throws(() => sampleTrackedPatches({ rng: new Rng(1) }, { patchFraction: 1 }), {
    instanceOf: OptionError,
    message: /patchFraction/,
  });
  t.throws(() => sampleTrackedPatches({ rng: new Rng(1) }, { trackLength: 1 }), {
    instanceOf: OptionError,
    message: /trackLength/,
  });
});

test.serial('tracking learns: the loss falls and tracked pairs end ranked right well above chance', async (t) => {
  const frames = syntheticFrames({ clips: 10, seed: 3, frames: 36, width: SIZE, height: SIZE });
  const learned = await learn(trackPatches, frames, SIZE, { steps: 150 });
  const [first, last] = [mean(learned.losses.slice(0, 20)), mean(learned.losses.slice(-30))];
  const accuracy = mean(learned.accuracies.slice(-30));
  t.log(`loss ${first.toFixed(3)} -> ${last.toFixed(3)}, accuracy ${accuracy.toFixed(3)}`);
  t.true(last < first * 0.7, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  t.true(accuracy > 0.75, `accuracy ${accuracy.toFixed(3)}`);
  dispose(learned);
});
