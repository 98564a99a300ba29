import type * as tf from '@tensorflow/tfjs';
import type { OperatorFunction } from 'rxjs';
import type { Rng } from '../core/rng.ts';
import type { Sample } from '../pipeline/sample.ts';

/** The families of the self-supervised literature a task belongs to. */
export type TaskFamily = 'temporal' | 'image-context' | 'text-context' | 'contrastive' | 'task-related';

/** What a sampler is built with. */
export interface SamplerContext {
  /** The sampler's own seeded generator: the same seed and input give the same samples. */
  readonly rng: Rng;
}

/**
 * A pretext task: a sampler that turns raw items into labelled samples, a head on top of the shared encoder,
 * a forward pass, a loss and a pretext metric. Every task is one file exporting one such object; all of them
 * sit in the registry map in `tasks/registry.ts`.
 *
 * `Raw` is what the sampler consumes (video frames, tokenized sentences, dialogues).
 */
export interface PretextTask<Raw = unknown> {
  /** The registry key, as written on the command line (`--tasks order`). */
  readonly name: string;
  readonly family: TaskFamily;
  /** The paper the task implements. */
  readonly paper: string;
  /** An RxJS operator from raw items to labelled samples. */
  sampler(context: SamplerContext): OperatorFunction<Raw, Sample>;
  /** Shapes of each sample input, without the batch axis. `itemShape` is the shape of one raw item. */
  inputShapes(itemShape: readonly number[]): number[][];
  /** Shape of the label, without the batch axis. */
  labelShape(itemShape: readonly number[]): number[];
  /** Builds the task's own trainable head on top of encoder features of size `featureSize`. */
  buildHead(featureSize: number, rng: Rng): tf.LayersModel;
  /** Predictions for a batch: inputs are `[batch, ...inputShape]` each; the encoder is shared between tasks. */
  forward(encoder: tf.LayersModel, head: tf.LayersModel, inputs: tf.Tensor[], training: boolean): tf.Tensor;
  /** Scalar loss of predictions against labels (a pure function of tensors). */
  loss(labels: tf.Tensor, predictions: tf.Tensor): tf.Scalar;
  /** Scalar pretext metric (accuracy for classification tasks), higher is better. */
  metric(labels: tf.Tensor, predictions: tf.Tensor): tf.Scalar;
}
