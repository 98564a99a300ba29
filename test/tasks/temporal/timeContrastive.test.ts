import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { firstValueFrom, from, toArray } from 'rxjs';
import { syntheticFrames } from '../../../fixtures/frames.ts';
import { selectBackend } from '../../../models/backend.ts';
import { OptionError } from '../../../core/errors.ts';
import { frameToFloat, type Frame } from '../../../pipeline/frame.ts';
import { syntheticViews } from '../../../pipeline/multiView.ts';
import { randomInitLike } from '../../../evaluation/evaluate.ts';
import { Rng } from '../../../core/rng.ts';
import { projectFrames } from '../../../tasks/contrastive/tripletTask.ts';
import { sampleTimeContrastive, timeContrastive } from '../../../tasks/temporal/timeContrastive.ts';
import { dispose, learn, mean } from '../_learn.ts';

const SIZE = 24;
test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

/** Two-view tuples whose first byte of every view is the moment's index and second the view, so samples trace back. */
async function tracedTuples(): Promise<Frame[][]> {
  const frames = syntheticFrames({ clips: 2, seed: 6, frames: 20, width: 16, height: 16 });
  const tuples = await firstValueFrom(from(frames).pipe(syntheticViews({ count: 2, rng: new Rng(3) }), toArray()));
  return tuples.map((tuple) =>
    tuple.map((f, view) => {
      const data = f.data.slice();
      data[0] = f.index;
      data[1] = view;
      return { ...f, data };
    }),
  );
}

test('the positive is another view of the same moment and the negative the same view far away', async (t) => {
  const samples = await firstValueFrom(
    from(await tracedTuples()).pipe(sampleTimeContrastive({ rng: new Rng(1) }, { negativeGap: 5 }), toArray()),
  );
  t.true(samples.length > 20);
  const back = (x: Float32Array) => ({ index: Math.round(x[0]! * 255), view: Math.round(x[1]! * 255) });
  for (const s of samples) {
    const [a, p, n] = s.inputs.map(back) as [ReturnType<typeof back>, ReturnType<typeof back>, ReturnType<typeof back>];
    t.is(a.index, p.index);
    t.not(a.view, p.view);
    t.is(n.view, a.view);
    t.true(Math.abs(n.index - a.index) >= 5);
  }
});

test('single frames are cut into views, and one-view tuples are refused', async (t) => {
  const frames = syntheticFrames({ clips: 1, seed: 6, frames: 12, width: 16, height: 16 });
  const samples = await firstValueFrom(from(frames).pipe(timeContrastive.sampler({ rng: new Rng(2) }), toArray()));
  t.true(samples.length > 3);
  t.notDeepEqual(samples[0]!.inputs[0], samples[0]!.inputs[1]);
  await t.throwsAsync(
    firstValueFrom(from([[frames[0]!]]).pipe(sampleTimeContrastive({ rng: new Rng(2) }), toArray())),
    { instanceOf: OptionError, message: /two views/ },
  );
  t.throws(() => sampleTimeContrastive({ rng: new Rng(1) }, { cropFraction: [0.9, 0.5] }), {
    instanceOf: OptionError,
    message: /cropFraction/,
  });
});

/** Fraction of view-0 frames whose nearest view-1 embedding is the same moment's (chance `1 / moments`). */
function retrievalAccuracy(encoder: tf.LayersModel, head: tf.LayersModel, tuples: Frame[][]): number {
  return tf.tidy(() => {
    const stack = (view: number) =>
      tf.tensor4d(
        tuples.flatMap((tuple) => Array.from(frameToFloat(tuple[view]!))),
        [tuples.length, SIZE, SIZE, 3],
      );
    const similarity = tf.matMul(
      projectFrames(encoder, head, stack(0)),
      projectFrames(encoder, head, stack(1)),
      false,
      true,
    );
    return mean(Array.from(tf.argMax(similarity, 1).dataSync(), (j, i) => Number(j === i)));
  });
}

test.serial(
  'TCN learns: the loss falls, and the same moment in two views is retrieved well above chance',
  async (t) => {
    const frames = syntheticFrames({ clips: 8, seed: 7, frames: 36, width: SIZE, height: SIZE });
    const tuples = await firstValueFrom(
      from(frames).pipe(syntheticViews({ count: 2, rng: new Rng(8), cropFraction: [0.6, 0.9] }), toArray()),
    );
    const learned = await learn(timeContrastive, tuples, SIZE, { steps: 200 });
    const [first, last] = [mean(learned.losses.slice(0, 20)), mean(learned.losses.slice(-30))];
    // Held-out clips: every third frame of three unseen videos, 36 moments.
    const heldOut = syntheticFrames({ clips: 3, seed: 70, frames: 36, width: SIZE, height: SIZE }).filter(
      (f) => f.index % 3 === 0,
    );
    const views = await firstValueFrom(
      from(heldOut).pipe(syntheticViews({ count: 2, rng: new Rng(9), cropFraction: [0.6, 0.9] }), toArray()),
    );
    const head = learned.result.heads.tcn!;
    const trained = retrievalAccuracy(learned.encoder, head, views);
    const randomEncoder = await randomInitLike(learned.encoder);
    const randomHead = timeContrastive.build(randomEncoder, new Rng(4)).head;
    const untrained = retrievalAccuracy(randomEncoder, randomHead, views);
    randomEncoder.dispose();
    randomHead.dispose();
    t.log(
      `loss ${first.toFixed(3)} -> ${last.toFixed(3)}, triplet accuracy ${mean(learned.accuracies.slice(-30)).toFixed(3)}, retrieval ${trained.toFixed(3)} (random init ${untrained.toFixed(3)}, chance ${(1 / views.length).toFixed(3)})`,
    );
    t.true(last < first * 0.7, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
    t.true(mean(learned.accuracies.slice(-30)) > 0.7);
    t.true(trained > 5 / views.length, `retrieval ${trained}`);
    t.true(trained > untrained, `retrieval ${trained} vs random init ${untrained}`);
    dispose(learned);
  },
);
