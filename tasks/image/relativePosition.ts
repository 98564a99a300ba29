import * as tf from '@tensorflow/tfjs';
import { map, type OperatorFunction } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import type { Rng } from '../../core/rng.ts';
import { mlpHead } from '../../models/heads.ts';
import { type Frame, frameToFloat } from '../../pipeline/frame.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { categoricalAccuracy, softmaxCrossEntropy } from '../losses/softmaxCrossEntropy.ts';
import type { PretextTask, SamplerContext } from '../task.ts';
import { cropInto, frameShapeOf, type PatchGrid, patchFeatures, patchFeatureSize, patchGrid } from './patches.ts';

/** The 8 neighbours of the centre cell as (row, column) steps, in the paper's order: label k is `NEIGHBOURS[k]`. */
export const NEIGHBOURS: readonly (readonly [number, number])[] = [
  [-1, -1],
  [-1, 0],
  [-1, 1],
  [0, -1],
  [0, 1],
  [1, -1],
  [1, 0],
  [1, 1],
];

/** Share of a grid cell left free around its patch (the paper: 96-pixel patches, gaps of 48 pixels). */
export const RELATIVE_GAP = 1 / 3;

/** Options of {@link relativePositionTask}. */
export interface RelativePositionOptions {
  /**
   * 'drop' (default): on colour frames, each patch keeps one random channel and the other two become that channel's
   * mean plus Gaussian noise of 1/100 of its standard deviation (the paper's colour dropping against chromatic
   * aberration); 'none': patches keep their colours. Gray frames have one channel, so it changes nothing there.
   */
  colour?: 'drop' | 'none';
}

/** Where a patch of the grid goes: its cell's corner plus the centred margin plus a jitter of up to a third of it. */
function place(origin: number, cell: number, index: number, gap: number, rng: Rng): number {
  const jitter = Math.floor(gap / 3);
  return origin + index * cell + (gap >> 1) + rng.int(2 * jitter + 1) - jitter;
}

/** Colour dropping in place on an HWC patch of 3 channels: one channel kept, the others its mean plus faint noise. */
export function dropColours(patch: Float32Array, rng: Rng): Float32Array {
  const kept = rng.int(3);
  const pixels = patch.length / 3;
  let mean = 0;
  for (let p = 0; p < pixels; p++) mean += patch[p * 3 + kept]!;
  mean /= pixels;
  let variance = 0;
  for (let p = 0; p < pixels; p++) variance += (patch[p * 3 + kept]! - mean) ** 2;
  const noise = Math.sqrt(variance / pixels) / 100;
  for (let p = 0; p < pixels; p++)
    for (let c = 0; c < 3; c++) if (c !== kept) patch[p * 3 + c] = mean + noise * rng.normal();
  return patch;
}

/**
 * One relative-position sample of `frame`: a 3 x 3 grid placed at a random offset, the centre cell's patch and the
 * patch of one of its 8 neighbour cells (drawn at random), each jittered within its cell; the input is
 * `[2, patchH, patchW, C]` (centre, neighbour), the label one-hot over the 8 neighbours.
 */
export function relativePositionSample(frame: Frame, grid: PatchGrid, colour: 'drop' | 'none', rng: Rng): Sample {
  const { width, height, channels } = frame;
  const pixels = frameToFloat(frame);
  const [[ch, cw], [ph, pw], [gh, gw]] = [grid.cell, grid.patch, grid.gap];
  const [oy, ox] = [rng.int(height - 3 * ch + 1), rng.int(width - 3 * cw + 1)];
  const neighbour = rng.int(NEIGHBOURS.length);
  const size = ph * pw * channels;
  const input = new Float32Array(2 * size);
  const [dy, dx] = NEIGHBOURS[neighbour]!;
  [
    [1, 1],
    [1 + dy, 1 + dx],
  ].forEach(([row, column], k) => {
    const window = { top: place(oy, ch, row!, gh, rng), left: place(ox, cw, column!, gw, rng), height: ph, width: pw };
    const patch = cropInto(pixels, width, channels, window, input.subarray(k * size, (k + 1) * size));
    if (colour === 'drop' && channels === 3) dropColours(patch, rng);
  });
  const label = new Float32Array(NEIGHBOURS.length);
  label[neighbour] = 1;
  return { inputs: [input], label, source: frame.source };
}

/**
 * Relative position prediction, made with `options`; the registry's `relative-position` is
 * `relativePositionTask()` (colour dropping on).
 *
 * The paper: Doersch, Gupta and Efros, ICCV 2015, "Unsupervised Visual Representation Learning by Context
 * Prediction". A pair of patches, the centre of a 3 x 3 grid and one of its 8 neighbours (96 x 96 pixels with gaps
 * of 48 and a jitter of up to 7 pixels, so low-level cues such as continuing edges do not give the answer), goes
 * through two AlexNet-style towers sharing weights up to fc6; their features are concatenated and fc7, fc8 classify
 * the 8 positions. Against chromatic aberration (a lens shifts the colours towards the image's edges, which tells
 * where a patch lies), each patch has two of its three colour channels dropped and replaced with faint noise (or
 * the colours projected to gray-green); some patches are downsampled and upsampled again.
 *
 * This: the same 3 x 3 grid in each frame, at a random offset, each cell a third of the frame, the patch leaving a
 * third of the cell as gap (28 x 28 frames: 9-pixel cells, 6-pixel patches; 64 x 64: 21 and 14), jittered by up to
 * a third of the gap (at least a pixel of gap always remains); colour dropping on colour frames (one channel kept,
 * the others its mean plus noise of 1/100 of its standard deviation; gray frames have nothing to drop, and no
 * chromatic aberration to hide). Both patches go through the shared encoder's conv blocks (`patchFeatures`: the
 * encoder's own layers, so its weights, run at patch size and flattened), the head (128 ReLU units, then 8 logits)
 * classifies their concatenation, with cross-entropy. Differences, and why: the patch problem: the shared encoder's
 * input is the whole frame and its dense output layer reads a whole frame's last map, so patches run through its
 * conv blocks only and the dense `features` layer is not trained by this task (probe the conv blocks:
 * `evaluate --layer relu2` or `pool`); resizing patches up to the frame instead would spend the encoder on blurred
 * patches unlike the frames it is evaluated on. The towers share everything up to the conv blocks, and the
 * concatenation is of flattened conv maps, not fc6 outputs; no random downsampling (the frames are small
 * already); the small shared encoder instead of AlexNet.
 *
 * @example
 * const keepColours = relativePositionTask({ colour: 'none' });
 */
export function relativePositionTask(options: RelativePositionOptions = {}): PretextTask<Frame> {
  const colour = options.colour ?? 'drop';
  if (colour !== 'drop' && colour !== 'none') throw new OptionError('colour', colour, "'drop' or 'none'");
  const gridOf = (shape: readonly number[]) => patchGrid(shape[0]!, shape[1]!, RELATIVE_GAP, 'relative-position');
  return {
    name: 'relative-position',
    family: 'image-context',
    paper: 'Doersch, Gupta, Efros. Unsupervised Visual Representation Learning by Context Prediction. ICCV 2015',
    reads: 'images',
    configure(setup) {
      gridOf(setup.itemShape);
      return this;
    },
    sampler: (context: SamplerContext): OperatorFunction<Frame, Sample> =>
      map((frame) => relativePositionSample(frame, gridOf([frame.height, frame.width]), colour, context.rng)),
    inputShapes: (itemShape) => [[2, ...gridOf(itemShape).patch, itemShape[2]!]],
    labelShape: () => [NEIGHBOURS.length],
    build(encoder, rng) {
      const [ph, pw] = gridOf(frameShapeOf(encoder)).patch;
      const head = mlpHead(
        'relative_position_head',
        2 * patchFeatureSize(encoder, ph, pw),
        [{ units: 128, activation: 'relu' }, { units: NEIGHBOURS.length }],
        rng,
      );
      return { head };
    },
    forward(encoder, { head }, inputs, training) {
      return tf.tidy(() => {
        // [batch, 2, h, w, C] -> [batch * 2, h, w, C]: both patches of every pair in one pass of the conv blocks.
        const pairs = inputs[0]!;
        const [, , h, w, c] = pairs.shape;
        const patches = tf.reshape(pairs, [-1, h!, w!, c!]) as tf.Tensor4D;
        const features = tf.reshape(patchFeatures(encoder, patches, training), [pairs.shape[0]!, -1]);
        return head.apply(features, { training }) as tf.Tensor;
      });
    },
    loss: (labels, logits) => tf.tidy(() => softmaxCrossEntropy(labels, logits)),
    metric: (labels, logits) => tf.tidy(() => categoricalAccuracy(labels, logits)),
  } satisfies PretextTask<Frame>;
}

/** The registry's relative-position task: colour dropping on colour frames. */
export const relativePosition = relativePositionTask();
