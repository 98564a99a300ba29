import type * as tf from '@tensorflow/tfjs';
import type { OperatorFunction } from 'rxjs';
import type { Rng } from '../core/rng.ts';
import type { Sample } from '../pipeline/sample.ts';
import type { Tokenizer } from '../text/tokenizers/Tokenizer.ts';
import type { TextTaskConfig } from './text/textTaskConfig.ts';

/** The families of the self-supervised literature a task belongs to. */
export type TaskFamily = 'temporal' | 'image-context' | 'text-context' | 'contrastive' | 'task-related';

/** What a sampler is built with. */
export interface SamplerContext {
  /** The sampler's own seeded generator: the same seed and input give the same samples. */
  readonly rng: Rng;
  /**
   * Every input of the run (video paths, URLs), when a run builds the sampler (`videoSamples`): a sampler that
   * needs more than its inputs can give (tracking needs two videos) throws a `TaskSamplesError` when built, before
   * any frame is decoded. Absent when the caller feeds the sampler directly.
   */
  readonly inputs?: readonly string[];
  /**
   * A store shared by every instance of this task's sampler in one epoch. A run makes one instance per video and
   * feeds all of them in one seeded order (`videoMixBy`), so what an instance finds here is the same in every run
   * with the same seed: an instance keeps items of its video here for the instances of other videos (tracking's
   * negatives are patches of other videos). Absent when one instance reads every video in one stream; the sampler
   * then keeps its own store.
   */
  readonly shared?: Map<string, unknown>;
}

/** What a task's sampler reads; a run picks the source of each task from it. */
export type ItemKind = 'frames' | 'clips' | 'views' | 'images' | 'sentences' | 'dialogues';

/** What a run knows when it builds its tasks (`configure`). */
export interface TaskSetup {
  /** Shape of one raw item: a frame `[H, W, C]`, a token sequence `[maxLength]`. */
  readonly itemShape: readonly number[];
  /** The run's tokenizer, for tasks that read text. */
  readonly tokenizer?: Tokenizer;
  /** Sequence length, dialogue window and embedding size of text tasks. */
  readonly text?: TextTaskConfig;
  /**
   * The corpus's count of each token id (length: the tokenizer's vocabSize), for tasks that draw words by their
   * frequency (word2vec's negatives and subsampling). A text run counts the corpus for tasks whose
   * `needsTokenCounts` is set.
   */
  readonly tokenCounts?: ArrayLike<number>;
  /**
   * The class of each labelled image of the run, by frame `source` (`file.idx#i`, a file path): only labelled images
   * are keys. An image run gives it with `--labels` (or class subfolders), to tasks that learn from labels
   * (`needsLabels`).
   */
  readonly labels?: ReadonlyMap<string, number>;
  /** Classes of `labels`: one more than the largest class index (a classifier's outputs). */
  readonly classes?: number;
  /**
   * Items of an indexed source: the size of an image set, whose frames carry their position in it as `index`
   * (`imageEpoch`). Tasks that keep one vector per item (a memory bank) size it by this; absent for video.
   */
  readonly itemCount?: number;
}

/** Counts kept over the samples a task's sampler emitted: what a run summary reports beside the pretext metric. */
export interface SampleTally {
  /** Counts one emitted sample. */
  add(sample: Sample): void;
  /** The figures so far (label balance, a trivial baseline), JSON-ready. */
  summary(): Record<string, number>;
}

/** What the trainer tells a task's state after each step. */
export interface StepContext {
  /** The step just taken (1-based). */
  step: number;
  /** The run's total steps. */
  steps: number;
  /**
   * `(1 - m_k) / (1 - m)` for an EMA of base momentum `m`: 1 for a constant momentum, falling from 1 to 0 over the run
   * under `--momentum-schedule cosine` (BYOL's), so that `m_k = 1 - (1 - m) * momentumFactor` rises to 1.
   */
  momentumFactor: number;
}

/**
 * State of a task that gradients do not train (a momentum encoder's weights, a queue of keys, a memory bank): the
 * trainer calls `afterStep` after each optimizer step and keeps `tensors()` in every checkpoint, so a resumed run
 * continues with exactly the state it was killed with.
 */
export interface TaskState {
  /** The state as named tensors; the trainer reads them and does not keep or dispose them. */
  tensors(): tf.NamedTensorMap;
  /** Replaces the state with saved tensors (copies them; the caller disposes `saved`). */
  restore(saved: tf.NamedTensorMap): void;
  /**
   * Updates the state after an optimizer step (EMA of the encoder, enqueue the step's keys). `context` says which
   * step it was and scales EMA momenta by the run's momentum schedule (see {@link StepContext}).
   */
  afterStep?(encoder: tf.LayersModel, context?: StepContext): void;
  dispose(): void;
}

/** The trainable parts and state a task builds for one run, on top of the shared encoder. */
export interface TaskParts {
  /** The head: encoder features to predictions. Saved as `heads/<task>/`. */
  head: tf.LayersModel;
  /**
   * Other trainable parts, trained by the same optimizer (a second encoder per view as in CMC, a decoder as in
   * inpainting, two half-networks as in split-brain). Saved as `parts/<task>/<name>/`.
   */
  extra?: Record<string, tf.LayersModel>;
  /** State not trained by gradients, checkpointed with the weights. */
  state?: TaskState;
  /**
   * The model whose output is the task's representation for evaluation (an encoder per view concatenated, say);
   * the shared encoder when absent. A task that reads intermediate feature maps builds a model on
   * `encoder.getLayer(name).output` here or in `build` (it shares the encoder's weights).
   */
  representation?: tf.LayersModel;
}

/**
 * A pretext task: a sampler that turns raw items into labelled samples, trainable parts on top of the shared
 * encoder (a head at least), a forward pass, a loss and a pretext metric. Every task is one file exporting one such
 * object; all of them sit in the registry map in `tasks/registry.ts`, which runs read alone: `reads` says which
 * source feeds the task and `configure` makes it for the run (item shape, tokenizer, options).
 *
 * `Raw` is what the sampler consumes (video frames, tokenized sentences, dialogues).
 */
export interface PretextTask<Raw = unknown> {
  /** The registry key, as written on the command line (`--tasks order`). */
  readonly name: string;
  readonly family: TaskFamily;
  /** The paper the task implements. */
  readonly paper: string;
  /** What the sampler reads. */
  readonly reads: ItemKind;
  /** The sampler draws words by their corpus frequency: a run counts the corpus first (`TaskSetup.tokenCounts`). */
  readonly needsTokenCounts?: boolean;
  /**
   * The sampler learns from labels (`TaskSetup.labels`): a run feeds it the labelled images only, while the other
   * tasks read every image (S4L's labelled and unlabelled streams).
   */
  readonly needsLabels?: boolean;
  /**
   * The task made for a run: text tasks take the tokenizer's ids and sizes here. Tasks that need nothing from the
   * setup return themselves.
   *
   * @throws OptionError when the setup lacks what the task needs (a tokenizer, a frame size it cannot use).
   */
  configure(setup: TaskSetup): PretextTask<Raw>;
  /** An RxJS operator from raw items to labelled samples. */
  sampler(context: SamplerContext): OperatorFunction<Raw, Sample>;
  /** Shapes of each sample input, without the batch axis. `itemShape` is the shape of one raw item. */
  inputShapes(itemShape: readonly number[]): number[][];
  /** Shape of the label, without the batch axis. */
  labelShape(itemShape: readonly number[]): number[];
  /** Builds the task's trainable parts (and state) for the shared `encoder`, seeded by `rng`. */
  build(encoder: tf.LayersModel, rng: Rng): TaskParts;
  /** Predictions for a batch: inputs are `[batch, ...inputShape]` each; the encoder is shared between tasks. */
  forward(encoder: tf.LayersModel, parts: TaskParts, inputs: tf.Tensor[], training: boolean): tf.Tensor;
  /** Scalar loss of predictions against labels (a pure function of tensors). */
  loss(labels: tf.Tensor, predictions: tf.Tensor): tf.Scalar;
  /** Scalar pretext metric (accuracy for classification tasks), higher is better. */
  metric(labels: tf.Tensor, predictions: tf.Tensor): tf.Scalar;
  /**
   * Scalars of a batch's predictions logged beside the loss and metric in `metrics.jsonl`, by name: the collapse
   * signal `embeddingStd` of embedding tasks (see `embeddingStd` in tasks/losses/infoNce.ts). `parts` gives a
   * monitor the task's state (MoCo's keys of the step).
   */
  readonly monitors?: Readonly<Record<string, (predictions: tf.Tensor, parts: TaskParts) => tf.Scalar>>;
  /** A fresh tally of emitted samples (label balance, a trivial baseline) for the run summary; absent: none. */
  tally?(): SampleTally;
}

/** Size of the shared encoder's first output `[batch, featureSize]`: what heads are built on. */
export function featureSizeOf(encoder: tf.LayersModel): number {
  return encoder.outputs[0]!.shape[1] as number;
}
