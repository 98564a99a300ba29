import * as tf from '@tensorflow/tfjs';
import { map, type OperatorFunction } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import type { Rng } from '../../core/rng.ts';
import { mlpHead } from '../../models/heads.ts';
import { type Frame, frameToFloat } from '../../pipeline/frame.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { categoricalAccuracy, softmaxCrossEntropy } from '../losses/softmaxCrossEntropy.ts';
import type { PretextTask, SamplerContext } from '../task.ts';
import { jigsawPermutations, TILES } from './jigsawPermutations.ts';
import {
  cropInto,
  frameShapeOf,
  normalizePatch,
  type PatchGrid,
  patchFeatures,
  patchFeatureSize,
  patchGrid,
} from './patches.ts';

/** Share of a grid cell left free around its tile (the paper: 64-pixel tiles in 75-pixel cells, about 0.15). */
export const JIGSAW_GAP = 0.2;

/** Options of {@link jigsawTask}. */
export interface JigsawOptions {
  /** Size of the permutation set, the classes (default 64; 64 and 100 are shipped files, others generated). */
  permutations?: number;
  /** The permutation set itself (tests, ablations); overrides `permutations`. */
  permutationSet?: readonly (readonly number[])[];
}

/**
 * One jigsaw sample of `frame`: the 3 x 3 grid at a random offset, each tile cut at a random place within its cell
 * (so gaps and jitter), normalized on its own (mean 0, standard deviation 1), the tiles in the order of a random
 * permutation of `set`: input position i holds the tile of cell `set[k][i]`. Input `[9, tileH, tileW, C]`, label
 * one-hot k over the set.
 */
export function jigsawSample(frame: Frame, grid: PatchGrid, set: readonly (readonly number[])[], rng: Rng): Sample {
  const { width, height, channels } = frame;
  const pixels = frameToFloat(frame);
  const [[ch, cw], [th, tw], [gh, gw]] = [grid.cell, grid.patch, grid.gap];
  const [oy, ox] = [rng.int(height - 3 * ch + 1), rng.int(width - 3 * cw + 1)];
  const size = th * tw * channels;
  const tiles = Array.from({ length: TILES }, (_, cell) => {
    const window = {
      top: oy + Math.floor(cell / 3) * ch + rng.int(gh + 1),
      left: ox + (cell % 3) * cw + rng.int(gw + 1),
      height: th,
      width: tw,
    };
    return normalizePatch(cropInto(pixels, width, channels, window, new Float32Array(size)));
  });
  const k = rng.int(set.length);
  const input = new Float32Array(TILES * size);
  set[k]!.forEach((cell, position) => input.set(tiles[cell]!, position * size));
  const label = new Float32Array(set.length);
  label[k] = 1;
  return { inputs: [input], label, source: frame.source };
}

/**
 * Jigsaw puzzles, made with `options`; the registry's `jigsaw` is `jigsawTask()` (64 permutations).
 *
 * The paper: Noroozi and Favaro, ECCV 2016, "Unsupervised Learning of Visual Representations by Solving Jigsaw
 * Puzzles". A 225 x 225 crop is cut into a 3 x 3 grid of 75 x 75 cells, a 64 x 64 tile is taken at a random place
 * in each (gaps and jitter, against edge continuity), each tile is normalized on its own (mean and standard
 * deviation, against low-level statistics), the tiles are shuffled by one permutation of a set chosen by maximal
 * average Hamming distance (Algorithm 1; 1000 in the main experiments, smaller sets in the ablations) and go
 * through a shared AlexNet tower (the context-free network) to fc6 each; the 9 fc6 outputs are concatenated and fc7,
 * fc8 classify the permutation. Colour jittering and grayscale images against chromatic aberration.
 *
 * This: the same grid at a random offset of each frame, each cell a third of the frame, the tile leaving a fifth of
 * the cell free (28 x 28 frames: 9-pixel cells, 7-pixel tiles; 64 x 64: 21 and 17) and placed at random within it;
 * each tile normalized on its own over all its values; the permutation set of `permutations` (64 by default; 64 and
 * 100 are shipped as `jigsawPermutations64.json` and `...100.json`, written by `scripts/jigsawPermutations.ts` with
 * Algorithm 1, its ties broken towards the candidate farthest from its nearest chosen permutation: minimum Hamming
 * distance 5 for 64, 4 for 100). The tiles go through the shared encoder's conv blocks (`patchFeatures`: the encoder's
 * own layers, so its weights, run at tile size and flattened), the 9 feature vectors are concatenated in input
 * order and the head (128 ReLU units, then one logit a permutation) classifies the permutation, with cross-entropy.
 * Differences, and why: the patch problem: the shared encoder's input is the whole frame and its dense output
 * layer reads a whole frame's last map, so tiles run through its conv blocks only and the dense `features` layer is
 * not trained by this task (probe the conv blocks: `evaluate --layer relu2` or `pool`); resizing tiles up to the
 * frame would spend the encoder on blurred tiles unlike the frames it is evaluated on. No per-tile fc6 (the
 * concatenation is of flattened conv maps); 64 permutations by default instead of 1000 (a small encoder on small
 * frames, and a CPU budget; the paper's ablation trains smaller sets too); no colour jittering or random grayscale (gray
 * runs have no colour; on colour frames this is a known shortcut left open); the small shared encoder instead of
 * AlexNet.
 *
 * @example
 * const hundred = jigsawTask({ permutations: 100 });
 */
export function jigsawTask(options: JigsawOptions = {}): PretextTask<Frame> {
  const count = options.permutations ?? 64;
  if (!Number.isInteger(count) || count < 2)
    throw new OptionError('permutations', count, 'an integer of at least 2 (64 and 100 are shipped)');
  let set = options.permutationSet;
  // Generated on first use, so the registry's task costs nothing until a run takes it.
  const permutations = () => (set ??= jigsawPermutations(count));
  const gridOf = (shape: readonly number[]) => patchGrid(shape[0]!, shape[1]!, JIGSAW_GAP, 'jigsaw');
  return {
    name: 'jigsaw',
    family: 'image-context',
    paper: 'Noroozi, Favaro. Unsupervised Learning of Visual Representations by Solving Jigsaw Puzzles. ECCV 2016',
    reads: 'images',
    configure(setup) {
      gridOf(setup.itemShape);
      return this;
    },
    sampler: (context: SamplerContext): OperatorFunction<Frame, Sample> =>
      map((frame) => jigsawSample(frame, gridOf([frame.height, frame.width]), permutations(), context.rng)),
    inputShapes: (itemShape) => [[TILES, ...gridOf(itemShape).patch, itemShape[2]!]],
    labelShape: () => [permutations().length],
    build(encoder, rng) {
      const [th, tw] = gridOf(frameShapeOf(encoder)).patch;
      const head = mlpHead(
        'jigsaw_head',
        TILES * patchFeatureSize(encoder, th, tw),
        [{ units: 128, activation: 'relu' }, { units: permutations().length }],
        rng,
      );
      return { head };
    },
    forward(encoder, { head }, inputs, training) {
      return tf.tidy(() => {
        // [batch, 9, h, w, C] -> [batch * 9, h, w, C]: every tile of every puzzle in one pass of the conv blocks.
        const puzzles = inputs[0]!;
        const [, , h, w, c] = puzzles.shape;
        const tiles = tf.reshape(puzzles, [-1, h!, w!, c!]) as tf.Tensor4D;
        const features = tf.reshape(patchFeatures(encoder, tiles, training), [puzzles.shape[0]!, -1]);
        return head.apply(features, { training }) as tf.Tensor;
      });
    },
    loss: (labels, logits) => tf.tidy(() => softmaxCrossEntropy(labels, logits)),
    metric: (labels, logits) => tf.tidy(() => categoricalAccuracy(labels, logits)),
  } satisfies PretextTask<Frame>;
}

/** The registry's jigsaw task: 64 permutations of maximal average Hamming distance. */
export const jigsaw = jigsawTask();
