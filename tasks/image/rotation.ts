import * as tf from '@tensorflow/tfjs';
import { map, type OperatorFunction } from 'rxjs';
import { mlpHead } from '../../models/heads.ts';
import type { Frame } from '../../pipeline/frame.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { OptionError } from '../../core/errors.ts';
import { categoricalAccuracy, softmaxCrossEntropy } from '../losses/softmaxCrossEntropy.ts';
import { featureSizeOf, type PretextTask, type SamplerContext } from '../task.ts';

/** The rotations a sample holds, in quarter turns counter-clockwise: 0, 90, 180 and 270 degrees. */
export const ROTATIONS = 4;

/**
 * Rotates the `size` x `size` square of an HWC image whose top-left corner is at (`top`, `left`) by `quarterTurns`
 * quarter turns counter-clockwise (as numpy's `rot90`), writing it at the same place of `out` (same shape as
 * `pixels`). Pixels outside the square are left as they are in `out`.
 *
 * @example
 * // A 2 x 2 gray square [[a, b], [c, d]] turned once: [[b, d], [a, c]].
 * rotateSquare(Float32Array.of(1, 2, 3, 4), new Float32Array(4), { width: 2, channels: 1, top: 0, left: 0, size: 2 }, 1);
 */
export function rotateSquare(
  pixels: Float32Array,
  out: Float32Array,
  layout: { width: number; channels: number; top: number; left: number; size: number },
  quarterTurns: number,
): Float32Array {
  const { width, channels, top, left, size } = layout;
  const n = size - 1;
  const turns = ((quarterTurns % 4) + 4) % 4;
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      // out[i][j] takes in[si][sj]: the inverse of turning counter-clockwise `turns` times.
      const [si, sj] = turns === 0 ? [i, j] : turns === 1 ? [j, n - i] : turns === 2 ? [n - i, n - j] : [n - j, i];
      const to = ((top + i) * width + left + j) * channels;
      const from = ((top + si) * width + left + sj) * channels;
      for (let c = 0; c < channels; c++) out[to + c] = pixels[from + c]!;
    }
  }
  return out;
}

/**
 * A frame as one rotation sample: its centre square (side min(height, width)) in the four rotations 0, 90, 180
 * and 270 degrees, each pasted back at the square's place in a black frame of the frame's size, as one input
 * `[4, height, width, channels]` of floats in [0, 1]; the label `[4, 4]` is one-hot rotation k for row k. A square
 * frame is rotated whole; a non-square one loses its sides, in all four rotations alike, so the black bars tell
 * nothing about the rotation.
 */
export function rotationSample(frame: Frame): Sample {
  const { width, height, channels } = frame;
  const size = Math.min(width, height);
  const layout = { width, channels, size, top: (height - size) >> 1, left: (width - size) >> 1 };
  const pixels = new Float32Array(frame.data.length);
  for (let i = 0; i < pixels.length; i++) pixels[i] = frame.data[i]! / 255;
  const stack = new Float32Array(ROTATIONS * pixels.length);
  const label = new Float32Array(ROTATIONS * ROTATIONS);
  for (let k = 0; k < ROTATIONS; k++) {
    rotateSquare(pixels, stack.subarray(k * pixels.length, (k + 1) * pixels.length), layout, k);
    label[k * ROTATIONS + k] = 1;
  }
  return { inputs: [stack], label, source: frame.source };
}

/** The sampler: every frame (a video frame or an image) becomes one sample of its four rotations. */
export function sampleRotations(): OperatorFunction<Frame, Sample> {
  return map(rotationSample);
}

/** Rows of four rotations `[batch, 4, ...]` as `[batch * 4, ...]` and back: each rotated image is a row. */
const rows = (t: tf.Tensor): tf.Tensor => tf.reshape(t, [-1, ROTATIONS]);

/**
 * Rotation prediction, RotNet (Gidaris, Singh and Komodakis, ICLR 2018, "Unsupervised Representation Learning by
 * Predicting Image Rotations"): which of four rotations was applied to an image? The shared frame encoder embeds
 * each rotated image; the head (`mlpHead`: 64 ReLU units, then 4 logits) gives a 4-way softmax, trained with
 * cross-entropy. Reads single frames (`reads: 'images'`), so it runs on `--images` and, unchanged, on video frames
 * beside temporal tasks (`--video ... --tasks rotation,order`).
 *
 * The paper: every image of a batch is fed in all four rotations 0, 90, 180, 270 degrees at once (a batch of B
 * images is 4B inputs, the paper's key detail: it found this better than one random rotation per image), a
 * Network-in-Network or AlexNet on 32x32 CIFAR or 224x224 ImageNet crops (random crops, flips), the rotation
 * classifier being the top of the network, whose lower blocks give the features.
 *
 * This: the same batching (a sample is the four rotations of one frame, input `[4, H, W, C]`, label `[4, 4]`; a
 * batch of B samples runs the encoder on 4B images); the 4-way head on the shared encoder's output. Differences,
 * and why: the encoder is the project's small shared one (3 conv blocks and a dense layer), sized for CPU runs and
 * shared with the other tasks; no crop or flip augmentation (the other tasks decide their own); a non-square frame
 * is cut to its centre square before rotating (a 90-degree turn of a non-square frame would not fit the encoder's
 * input), pasted back into a black frame of the run's size in all four rotations, so the encoder keeps one input
 * shape and the bars give no hint (`--images` are resized to the run's size, square by default, so only non-square
 * `--width`/`--height` lose anything).
 *
 * @example
 * const samples$ = imageEpoch(images, { width: 28, height: 28, gray: true }, new Rng(1)).pipe(rotation.sampler({ rng: new Rng(2) }));
 */
export const rotation = {
  name: 'rotation',
  family: 'image-context',
  paper: 'Gidaris, Singh, Komodakis. Unsupervised Representation Learning by Predicting Image Rotations. ICLR 2018',
  reads: 'images',
  configure(setup) {
    const [height, width] = setup.itemShape;
    if (!(height! >= 2 && width! >= 2))
      throw new OptionError('--width/--height', setup.itemShape, 'frames of at least 2 x 2 pixels for rotation');
    return this;
  },
  // Nothing random: every frame gives its four rotations.
  sampler: (_context: SamplerContext) => sampleRotations(),
  inputShapes: (itemShape) => [[ROTATIONS, ...itemShape]],
  labelShape: (_itemShape: readonly number[]) => [ROTATIONS, ROTATIONS],
  build(encoder, rng) {
    const head = mlpHead(
      'rotation_head',
      featureSizeOf(encoder),
      [{ units: 64, activation: 'relu' }, { units: 4 }],
      rng,
    );
    return { head };
  },
  forward(encoder, { head }, inputs, training) {
    return tf.tidy(() => {
      // [batch, 4, H, W, C] -> [batch * 4, H, W, C]: all four rotations of every image in one encoder batch.
      const stacked = inputs[0]!;
      const images = tf.reshape(stacked, [-1, ...stacked.shape.slice(2)]);
      const logits = head.apply(encoder.apply(images, { training }), { training }) as tf.Tensor;
      return tf.reshape(logits, [-1, ROTATIONS, ROTATIONS]);
    });
  },
  /** labels one-hot `[batch, 4, 4]`, logits `[batch, 4, 4]`: mean cross-entropy over the 4B rotated images. */
  loss: (labels, logits) => tf.tidy(() => softmaxCrossEntropy(rows(labels), rows(logits))),
  metric: (labels, logits) => tf.tidy(() => categoricalAccuracy(rows(labels), rows(logits))),
} satisfies PretextTask<Frame>;
