import * as tf from '@tensorflow/tfjs';
import { filter, map, type OperatorFunction } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import { mlpHead } from '../../models/heads.ts';
import { frameToFloat, type Frame } from '../../pipeline/frame.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { categoricalAccuracy, softmaxCrossEntropy } from '../losses/softmaxCrossEntropy.ts';
import { featureSizeOf, type PretextTask, type SamplerContext } from '../task.ts';

/**
 * Labelled images as classification samples: each frame whose `source` has a class in `labels` becomes one sample,
 * input the frame `[H, W, C]` in [0, 1], label one-hot `[classes]`; a frame without a label is left out.
 *
 * @example
 * of(frame).pipe(sampleLabelled(new Map([[frame.source, 2]]), 10)); // one sample, label one-hot at 2
 */
export function sampleLabelled(labels: ReadonlyMap<string, number>, classes: number): OperatorFunction<Frame, Sample> {
  return (frames) =>
    frames.pipe(
      filter((frame) => labels.has(frame.source)),
      map((frame) => {
        const label = new Float32Array(classes);
        label[labels.get(frame.source)!] = 1;
        return { inputs: [frameToFloat(frame)], label, source: frame.source };
      }),
    );
}

/**
 * The supervised task of task-related self-supervision: a classifier trained on the labelled images beside
 * self-supervised tasks on every image, in one run on the shared encoder.
 *
 * - S4L (Zhai, Oliver, Kolesnikov and Beyer, ICCV 2019, "S4L: Self-Supervised Semi-Supervised Learning"): a
 *   ResNet-50v2 trained on the sum of a cross-entropy loss on the labelled images (10% or 1% of ImageNet) and a
 *   self-supervised loss (rotation or exemplar) on every image, labelled and unlabelled, each batch holding both;
 *   the classifier is a linear layer on the pooled features, trained with random crops and flips; then optionally
 *   fine-tuned, and a second stage of pseudo-labels (S4L MOAM).
 * - Rotation as an auxiliary loss for few-shot learning (Gidaris, Bursuc, Komodakis, Pérez and Cord, ICCV 2019,
 *   "Boosting Few-Shot Visual Learning with Self-Supervision"): a feature extractor trained on the base classes with
 *   a cosine classifier plus the rotation loss on the same images; novel classes are then recognized from a few
 *   examples by prototypes (or by weights generated from them).
 *
 * This: the labelled images (`--labels` with `--labelled-fraction`, or class subfolders; `--classes` keeps the base
 * classes only) stream through this task, one sample an image, label one-hot over the classes, into a linear
 * softmax head (`mlpHead`: `classes` logits) on the shared encoder's 64-d output, trained with cross-entropy; the
 * other tasks of the run (rotation) read every image. The shared trainer takes one batch per task per step and
 * minimizes the weighted sum of their losses, so each step holds a labelled batch and an unlabelled batch (the
 * rotation batch, drawn from all images, labelled ones included) as in S4L. The trained head is saved in
 * `heads/supervised/`; `tempo-ssl classify` scores encoder and head on a test set, `tempo-ssl few-shot` runs
 * episodes on held-out classes.
 *
 * Differences, and why: the small shared encoder and no crop or flip augmentation (CPU budget; the same as the
 * other image tasks); no fine-tuning or pseudo-label stage (S4L's MOAM), the run's classifier is scored as trained;
 * for few-shot a linear softmax head during training instead of Gidaris et al.'s cosine classifier, with a cosine
 * prototype classifier at test time (their prototype variant), since the head is shared with S4L.
 *
 * @example
 * const task = supervised.configure({ itemShape: [28, 28, 1], labels, classes: 10 });
 */
export const supervised = {
  name: 'supervised',
  family: 'task-related',
  paper:
    'Zhai, Oliver, Kolesnikov, Beyer. S4L: Self-Supervised Semi-Supervised Learning. ICCV 2019; Gidaris, Bursuc, Komodakis, Pérez, Cord. Boosting Few-Shot Visual Learning with Self-Supervision. ICCV 2019',
  reads: 'images',
  needsLabels: true,
  configure(setup) {
    const { labels, classes } = setup;
    if (!labels || labels.size === 0 || !(classes! >= 2)) {
      throw new OptionError(
        '--labels',
        undefined,
        'labels for --tasks supervised: an IDX labels file with --images images.idx, or class subfolders of an image folder (at least 2 classes)',
      );
    }
    return { ...this, sampler: (_context: SamplerContext) => sampleLabelled(labels, classes!), classes };
  },
  // Set by `configure`: the task unconfigured has no classes, and its sampler labels nothing.
  classes: 0,
  sampler: (_context: SamplerContext): OperatorFunction<Frame, Sample> => {
    throw new OptionError('--labels', undefined, 'labels for --tasks supervised (configure the task first)');
  },
  inputShapes: (itemShape) => [[...itemShape]],
  labelShape(_itemShape: readonly number[]) {
    return [this.classes];
  },
  build(encoder, rng) {
    return { head: mlpHead('supervised_head', featureSizeOf(encoder), [{ units: this.classes }], rng) };
  },
  forward(encoder, { head }, inputs, training) {
    return tf.tidy(() => head.apply(encoder.apply(inputs[0]!, { training }), { training }) as tf.Tensor);
  },
  /** labels one-hot `[batch, classes]`, logits `[batch, classes]`: mean cross-entropy. */
  loss: (labels, logits) => softmaxCrossEntropy(labels, logits),
  metric: (labels, logits) => categoricalAccuracy(labels, logits),
} satisfies PretextTask<Frame> & { classes: number };
