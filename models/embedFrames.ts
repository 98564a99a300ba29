import * as tf from '@tensorflow/tfjs';
import { bufferCount, concatMap, finalize, type Observable, type OperatorFunction } from 'rxjs';
import { DataFormatError, OptionError } from '../core/errors.ts';
import type { Frame } from '../pipeline/frame.ts';
import type { Valve } from '../core/valve.ts';

/** One frame's embedding, with where it came from. */
export interface FrameEmbedding {
  /** The input the frame came from (path or URL). */
  source: string;
  /** The frame's index in its decoded stream. */
  index: number;
  /** The frame's time in seconds. */
  timestamp: number;
  /** The encoder's output for the frame, `featureSize` numbers. */
  embedding: number[];
}

/** Options of `embedFrames`. */
export interface EmbedFramesOptions {
  /** Frames run through the encoder at once. Default 32. */
  batchSize?: number;
  /** The decoder's valve: closed while a batch is being embedded, so frames do not pile up ahead of the encoder. */
  valve?: Valve;
}

/**
 * Runs frames through a trained frame encoder in batches: `[batch, H, W, C]` (pixels / 255) ->
 * `[batch, featureSize]`, one `FrameEmbedding` out per frame, in order. Every tensor is disposed before its
 * embeddings are emitted. A frame whose size differs from the encoder's input errors with `DataFormatError`.
 *
 * @example
 * embedFrames(encoder, decodeFrames('clip.mp4', { width: 64, height: 64 }), { batchSize: 16 }).subscribe((e) => e.embedding.length);
 */
export function embedFrames(
  encoder: tf.LayersModel,
  frames: Observable<Frame>,
  options: EmbedFramesOptions = {},
): Observable<FrameEmbedding> {
  return frames.pipe(embedBatches(encoder, options));
}

function embedBatches(encoder: tf.LayersModel, options: EmbedFramesOptions): OperatorFunction<Frame, FrameEmbedding> {
  const { batchSize = 32, valve } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new OptionError('batchSize', batchSize, 'a positive integer');
  const [, height, width, channels] = encoder.inputs[0]!.shape as [null, number, number, number];
  return (source) =>
    source.pipe(
      bufferCount(batchSize),
      concatMap(async (batch) => {
        valve?.close();
        try {
          return await embedBatch(encoder, batch, [height, width, channels]);
        } finally {
          valve?.open();
        }
      }),
      concatMap((embeddings) => embeddings),
      finalize(() => valve?.open()),
    );
}

async function embedBatch(
  encoder: tf.LayersModel,
  batch: Frame[],
  [height, width, channels]: [number, number, number],
): Promise<FrameEmbedding[]> {
  const size = height * width * channels;
  const pixels = new Float32Array(batch.length * size);
  batch.forEach((frame, i) => {
    if (frame.height !== height || frame.width !== width || frame.channels !== channels) {
      throw new DataFormatError(
        frame.source,
        `frame ${frame.index} is ${frame.height}x${frame.width}x${frame.channels} but the encoder wants ${height}x${width}x${channels} (decode at the run's --width/--height/--gray)`,
      );
    }
    // [0, 255] bytes -> [0, 1] floats, as in training (frameToFloat).
    for (let j = 0; j < size; j++) pixels[i * size + j] = frame.data[j]! / 255;
  });
  // [batch, featureSize]
  const features = tf.tidy(
    () => encoder.predict(tf.tensor4d(pixels, [batch.length, height, width, channels])) as tf.Tensor2D,
  );
  const values = await features.data();
  const featureSize = features.shape[1];
  features.dispose();
  return batch.map((frame, i) => ({
    source: frame.source,
    index: frame.index,
    timestamp: frame.timestamp,
    embedding: Array.from(values.subarray(i * featureSize, (i + 1) * featureSize)),
  }));
}
