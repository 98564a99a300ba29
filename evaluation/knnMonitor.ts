import * as tf from '@tensorflow/tfjs';
import { accuracy } from './accuracy.ts';
import { knnClassify } from './knnClassify.ts';
import { embed, type LabelledItems } from './linearProbe.ts';
import { splitLabelled } from './splitLabelled.ts';

/** Options of {@link knnMonitor}. */
export interface KnnMonitorOptions {
  /** Score every this many steps (and at the last). Default 100. */
  every?: number;
  /** Share of the labelled items that are queries; the rest is the kNN's memory. Default 0.5. */
  queryFraction?: number;
  /** Seed of the split. Default 0. */
  seed?: number;
  /** Items per forward pass. Default 128. */
  batchSize?: number;
}

/**
 * The online kNN monitor of solo-learn and lightly (weighted kNN, Wu et al. 2018: k = 20, votes exp(s / 0.07)):
 * a labelled set held out of training is split once, stratified, into a memory and queries; every `every` steps
 * the encoder (inference mode) embeds both and the monitor returns how often a query's label is its weighted
 * neighbours' vote. Cheap enough to run during training (one forward pass over the set), and it moves where the
 * loss alone cannot tell learning from collapse.
 *
 * @example
 * train({ ..., knnMonitor: knnMonitor(await readLabelledSet('t10k-images.gz,t10k-labels.gz', '--monitor', ...)) });
 */
export function knnMonitor(
  set: LabelledItems,
  options: KnnMonitorOptions = {},
): { every: number; measure(encoder: tf.LayersModel): Promise<number> } {
  const { every = 100, queryFraction = 0.5, seed = 0, batchSize = 128 } = options;
  // Frames of one video (the set's groups) stay on one side, as in `evaluate`.
  const { train: memory, test: queries } = splitLabelled(set, queryFraction, seed);
  return {
    every,
    measure(encoder) {
      const memoryX = embed(encoder, memory.items, batchSize);
      const queryX = embed(encoder, queries.items, batchSize);
      try {
        const predicted = knnClassify(memoryX, memory.labels, queryX, { k: 20, temperature: 0.07 });
        return Promise.resolve(accuracy(predicted, queries.labels));
      } finally {
        tf.dispose([memoryX, queryX]);
      }
    },
  };
}
