import test from 'ava';
import { firstValueFrom, from, toArray } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import { motionScore, scoreMotion } from '../../pipeline/motionScore.ts';
import { flatFrame, makeFrame } from './_frames.ts';

test('a still window scores 0 and black to white scores 1', (t) => {
  t.is(motionScore([flatFrame(0, 90), flatFrame(1, 90), flatFrame(2, 90)]), 0);
  t.is(motionScore([flatFrame(0, 0), flatFrame(1, 255)]), 1);
  t.is(motionScore([flatFrame(0, 7)]), 0);
});

test('the score is the mean absolute difference of consecutive frames over 255', (t) => {
  // Pairs differ by 51 and then by 102 grey levels: (0.2 + 0.4) / 2.
  t.true(Math.abs(motionScore([flatFrame(0, 0), flatFrame(1, 51), flatFrame(2, 153)]) - 0.3) < 1e-12);
  // A moving edge: half of the 8 columns change from 0 to 255 between the two frames.
  const edge = (shift: number) => (x: number) => (x < 2 + shift ? 255 : 0);
  const a = makeFrame(0, edge(0), { channels: 1 });
  const b = makeFrame(1, edge(4), { channels: 1 });
  t.is(motionScore([a, b]), 0.5);
});

test('frames of different sizes are refused', (t) => {
  t.throws(() => motionScore([flatFrame(0, 0), flatFrame(1, 0, { width: 4 })]), {
    instanceOf: OptionError,
    message: /frames of one size/,
  });
});

test('scoreMotion attaches the score to each window', async (t) => {
  const windows = [
    [flatFrame(0, 0), flatFrame(1, 255)],
    [flatFrame(2, 5), flatFrame(3, 5)],
  ];
  const scored = await firstValueFrom(from(windows).pipe(scoreMotion(), toArray()));
  t.deepEqual(
    scored.map((s) => s.motion),
    [1, 0],
  );
  t.is(scored[0]!.frames, windows[0]);
});
