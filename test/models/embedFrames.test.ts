import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { firstValueFrom, from, lastValueFrom, toArray } from 'rxjs';
import { selectBackend } from '../../models/backend.ts';
import { embedFrames } from '../../models/embedFrames.ts';
import { buildFrameEncoder } from '../../models/frameEncoder.ts';
import { DataFormatError, OptionError } from '../../core/errors.ts';
import { makeFrame } from '../pipeline/_frames.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

const shape: [number, number, number] = [16, 16, 3];
const frames = (n: number, size = 16) =>
  Array.from({ length: n }, (_, i) =>
    makeFrame(i, (x, y, c) => (x * 13 + y * 7 + c * 50 + i * 9) % 256, {
      width: size,
      height: size,
      source: 'clip.mp4',
      fps: 10,
    }),
  );

test.serial('every frame gets one embedding, in order, with its source, index and timestamp', async (t) => {
  const encoder = buildFrameEncoder({ inputShape: shape, featureSize: 8, seed: 1 });
  const out = await lastValueFrom(embedFrames(encoder, from(frames(7)), { batchSize: 3 }).pipe(toArray()));
  t.is(out.length, 7);
  t.deepEqual(
    out.map((e) => e.index),
    [0, 1, 2, 3, 4, 5, 6],
  );
  t.true(out.every((e) => e.source === 'clip.mp4' && e.embedding.length === 8 && e.embedding.every(Number.isFinite)));
  t.is(out[5]!.timestamp, 0.5);
  encoder.dispose();
});

test.serial('embeddings equal the encoder run on each frame alone (batching changes nothing)', async (t) => {
  const encoder = buildFrameEncoder({ inputShape: shape, featureSize: 8, seed: 2, normalization: 'none' });
  const input = frames(5);
  const batched = await lastValueFrom(embedFrames(encoder, from(input), { batchSize: 4 }).pipe(toArray()));
  const single = await lastValueFrom(embedFrames(encoder, from(input), { batchSize: 1 }).pipe(toArray()));
  const direct = tf.tidy(
    () =>
      (
        encoder.predict(
          tf.tensor4d(
            Float32Array.from(input[3]!.data, (v) => v / 255),
            [1, ...shape],
          ),
        ) as tf.Tensor
      ).arraySync() as number[][],
  );
  batched.forEach((e, i) => e.embedding.forEach((v, j) => t.true(Math.abs(v - single[i]!.embedding[j]!) < 1e-4)));
  direct[0]!.forEach((v, j) => t.true(Math.abs(v - batched[3]!.embedding[j]!) < 1e-4));
  encoder.dispose();
});

test.serial('no tensor is left behind after embedding many batches', async (t) => {
  const encoder = buildFrameEncoder({ inputShape: shape, featureSize: 8, seed: 3 });
  await lastValueFrom(embedFrames(encoder, from(frames(4)), { batchSize: 2 }).pipe(toArray()));
  const before = tf.memory().numTensors;
  await lastValueFrom(embedFrames(encoder, from(frames(40)), { batchSize: 6 }).pipe(toArray()));
  t.is(tf.memory().numTensors, before);
  encoder.dispose();
});

test.serial('a frame of the wrong size errors naming the frame and the expected size', async (t) => {
  const encoder = buildFrameEncoder({ inputShape: shape, featureSize: 8, seed: 4 });
  const error = await t.throwsAsync(firstValueFrom(embedFrames(encoder, from(frames(2, 8)))), {
    instanceOf: DataFormatError,
  });
  t.regex(error!.message, /clip\.mp4: frame 0 is 8x8x3 but the encoder wants 16x16x3/);
  t.throws(() => embedFrames(encoder, from(frames(1)), { batchSize: 0 }), { instanceOf: OptionError });
  encoder.dispose();
});
