import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../core/errors.ts';
import { accuracy } from './accuracy.ts';
import { randomInitLike } from './evaluate.ts';
import { knnClassify } from './knnClassify.ts';
import { fitLinearClassifier, type LinearClassifierOptions } from './linearClassifier.ts';
import { embed, type LabelledItems } from './linearProbe.ts';
import {
  chooseLayer,
  featureModel,
  formatLayerSpec,
  parseLayerSpec,
  type LayerChoice,
  type LayerSpec,
} from './featureLayer.ts';
import { splitLabelled, subset, takePerClass } from './splitLabelled.ts';
import { predictClasses, trainClassifier, type TrainClassifierOptions } from './trainClassifier.ts';

/** Options of the evaluation protocol; the defaults are the published ones where there is one. */
export interface EvaluateEncoderOptions {
  /**
   * Where the frozen feature is read: 'output' (default, the encoder's output), a layer name (its output
   * flattened), `name:pool` (its feature map globally averaged, see `parseLayerSpec`), or 'best': the block
   * `chooseLayer` picks for the pretrained encoder on the validation split of the training labels, then read alike
   * in the random-init and supervised encoders.
   */
  layer?: string;
  /** Labels per class of the few-label protocol. Default 10. */
  labelsPerClass?: number;
  /** Seeded draws of the few-label training set; their mean is reported, and their standard deviation. Default 5. */
  draws?: number;
  /** Seed of the draws, the validation split, the heads' initial weights and the order of items. Default 0. */
  seed?: number;
  /** Neighbours of the weighted kNN. Default 20. */
  k?: number;
  /** Temperature of the weighted kNN's votes. Default 0.07 (Wu et al. 2018). */
  temperature?: number;
  /** The logistic regression of the linear protocols (fixed: no choice is made, so no validation is needed). */
  probe?: LinearClassifierOptions;
  /** End-to-end training with all labels (supervised baseline and fine-tuning). Default 10 epochs, Adam 1e-3. */
  training?: Omit<TrainClassifierOptions, 'validation' | 'seed'>;
  /**
   * Fraction of the training items (by group when given) held out to choose the epoch of end-to-end training.
   * Default 0.2.
   */
  validationFraction?: number;
  /** Gradient steps of end-to-end training on a few-label draw (a fixed schedule: no labels are left to choose one). Default 100. */
  fewLabelSteps?: number;
  /** Items per forward pass when computing features. Default 64. */
  batchSize?: number;
  /** Progress lines (one per stage). */
  log?: (line: string) => void;
}

/** One protocol's accuracy for each encoder, in [0, 1]. */
export interface ProtocolScores {
  /** The encoder under evaluation. */
  pretrained: number;
  /** The same architecture at the initial weights of a fresh run with the same seed. */
  randomInit: number;
  /** The same architecture trained end to end on the protocol's labels. */
  supervised: number;
}

/** What `evaluateEncoder` reports (the `evaluate` command's JSON). */
export interface EncoderEvaluation {
  /** The layer spec read (with 'best': the one chosen). */
  layer: string;
  /** With `layer: 'best'`: how the layer was chosen and every candidate's validation accuracy. */
  layerChoice?: LayerChoice;
  labelsPerClass: number;
  protocols: {
    /** Logistic regression on frozen features, all training labels; supervised: its own linear layer. */
    linear: ProtocolScores;
    /** The same with `labelsPerClass` labels per class, mean over `draws` draws. */
    fewLabel: ProtocolScores;
    /** Weighted cosine kNN on frozen features, all training labels. */
    knn: ProtocolScores;
    /**
     * Encoder + linear layer trained end to end on all training labels, from the pretrained weights and, on the
     * same schedule, from the random-init weights (which is the supervised baseline: the same number as
     * linear.supervised).
     */
    fineTune: { pretrained: number; randomInit: number };
  };
  /** Standard deviation of the few-label accuracies over the draws. */
  fewLabelSpread: ProtocolScores;
  draws: number;
  classes: number;
  trainCount: number;
  testCount: number;
}

/**
 * One evaluation protocol for a pretrained encoder, always beside the same architecture at random init and
 * trained supervised: linear probe with all labels, linear probe with N labels per class (mean and spread over
 * seeded draws), weighted kNN (cosine, k=20, T=0.07; Wu et al. 2018) and fine-tuning. The test items are used
 * for scoring only: fitting uses `train`, and the one choice made (the epoch of end-to-end training) uses a
 * validation split of `train` (kept by `groups`, e.g. the clip of each frame).
 *
 * @example
 * const { train, test } = splitLabelled(await labelledFrames(labels, format), 0.3, 0);
 * const report = await evaluateEncoder(await loadEncoder('runs/a'), train, test);
 * report.protocols.linear; // { pretrained, randomInit, supervised }
 */
export async function evaluateEncoder(
  encoder: tf.LayersModel,
  train: LabelledItems & { groups?: string[] },
  test: LabelledItems,
  options: EvaluateEncoderOptions = {},
): Promise<EncoderEvaluation> {
  const settings = validateOptions(train, test, options);
  const { labelsPerClass, draws, seed, log } = settings;
  const classes = Math.max(...train.labels, ...test.labels) + 1;
  const { train: fit, test: validation } = splitLabelled(train, settings.validationFraction, seed + 1, train.groups);
  let layerChoice: LayerChoice | undefined;
  if (settings.layer === 'best') {
    log('--layer best: a linear probe of each block of the pretrained encoder on the validation split');
    layerChoice = chooseLayer(encoder, fit, validation, { probe: settings.probe, batchSize: settings.batchSize });
    log(`--layer best: ${layerChoice.layer} (${JSON.stringify(layerChoice.scores)})`);
  }
  const layer = parseLayerSpec(encoder, layerChoice?.layer ?? settings.layer);

  log('supervised baseline: training the random-init architecture on all training labels');
  const supervised = await trainClassifier(await randomInitLike(encoder), fit, classes, {
    ...settings.training,
    seed,
    validation,
  });
  log('fine-tuning the pretrained encoder on the same schedule');
  const fineTuned = await trainClassifier(await copyOf(encoder), fit, classes, {
    ...settings.training,
    seed,
    validation,
  });
  const randomInit = await randomInitLike(encoder);
  const frozen: Partial<Record<keyof ProtocolScores, ReturnType<typeof frozenScores>>> = {};
  try {
    log('frozen features, linear probe and kNN: pretrained, random init, supervised');
    frozen.pretrained = frozenScores(encoder, layer, train, test, classes, settings);
    frozen.randomInit = frozenScores(randomInit, layer, train, test, classes, settings);
    frozen.supervised = frozenScores(supervised.encoder, layer, train, test, classes, settings);
    const supervisedAccuracy = accuracy(
      predictClasses(supervised.encoder, supervised.head, test.items, settings.batchSize),
      test.labels,
    );
    const fineTuneAccuracy = accuracy(
      predictClasses(fineTuned.encoder, fineTuned.head, test.items, settings.batchSize),
      test.labels,
    );
    log(`few-label: ${labelsPerClass} labels per class, ${draws} draws`);
    const few: ProtocolScores[] = [];
    for (let draw = 0; draw < draws; draw++) {
      const picked = takePerClass(train.labels, labelsPerClass, seed + 100 + draw);
      few.push({
        pretrained: frozen.pretrained.fewLabel(picked),
        randomInit: frozen.randomInit.fewLabel(picked),
        supervised: await fewLabelSupervised(encoder, subset(train, picked), test, classes, seed + draw, settings),
      });
    }
    return {
      layer: formatLayerSpec(layer),
      ...(layerChoice && { layerChoice }),
      labelsPerClass,
      protocols: {
        linear: {
          pretrained: frozen.pretrained.linear,
          randomInit: frozen.randomInit.linear,
          supervised: supervisedAccuracy,
        },
        fewLabel: summarize(few, mean),
        knn: {
          pretrained: frozen.pretrained.knn,
          randomInit: frozen.randomInit.knn,
          supervised: frozen.supervised.knn,
        },
        fineTune: { pretrained: fineTuneAccuracy, randomInit: supervisedAccuracy },
      },
      fewLabelSpread: summarize(few, standardDeviation),
      draws,
      classes,
      trainCount: train.items.length,
      testCount: test.items.length,
    };
  } finally {
    for (const scores of Object.values(frozen)) scores.dispose();
    for (const model of [supervised.encoder, supervised.head, fineTuned.encoder, fineTuned.head, randomInit])
      model.dispose();
  }
}

type Settings = Required<Omit<EvaluateEncoderOptions, 'probe' | 'training'>> &
  Pick<EvaluateEncoderOptions, 'probe' | 'training'>;

function validateOptions(train: LabelledItems, test: LabelledItems, options: EvaluateEncoderOptions): Settings {
  const settings: Settings = {
    layer: 'output',
    labelsPerClass: 10,
    draws: 5,
    seed: 0,
    k: 20,
    temperature: 0.07,
    validationFraction: 0.2,
    fewLabelSteps: 100,
    batchSize: 64,
    log: () => {},
    ...options,
  };
  if (train.items.length < 2 || test.items.length === 0) {
    throw new OptionError(
      'labelled set',
      `${train.items.length} train / ${test.items.length} test items`,
      'at least 2 training and 1 test item (give more labelled items or another --test-fraction)',
    );
  }
  if (!Number.isInteger(settings.labelsPerClass) || settings.labelsPerClass < 1)
    throw new OptionError('labelsPerClass', settings.labelsPerClass, 'a positive integer');
  if (!Number.isInteger(settings.draws) || settings.draws < 1)
    throw new OptionError('draws', settings.draws, 'a positive integer');
  if (!(settings.validationFraction > 0 && settings.validationFraction < 1))
    throw new OptionError('validationFraction', settings.validationFraction, 'a number in (0, 1)');
  return settings;
}

/** A frozen encoder's features of train and test and the scores computed from them (features freed after). */
function frozenScores(
  encoder: tf.LayersModel,
  layer: LayerSpec,
  train: LabelledItems,
  test: LabelledItems,
  classes: number,
  settings: Settings,
): { linear: number; knn: number; fewLabel: (picked: number[]) => number; dispose: () => void } {
  const features = featureModel(encoder, layer);
  const trainX = embed(features, train.items, settings.batchSize);
  const testX = embed(features, test.items, settings.batchSize);
  const linearOn = (x: tf.Tensor2D, labels: number[]) => {
    const classifier = fitLinearClassifier(x, labels, classes, settings.probe);
    try {
      return accuracy(classifier.predict(testX), test.labels);
    } finally {
      classifier.dispose();
    }
  };
  const linear = linearOn(trainX, train.labels);
  const knn = accuracy(
    knnClassify(trainX, train.labels, testX, { k: settings.k, temperature: settings.temperature }),
    test.labels,
  );
  // The few-label probes reuse these features; `dispose` frees them once the draws are scored.
  const fewLabel = (picked: number[]) => {
    const x = tf.gather(trainX, picked) as tf.Tensor2D;
    try {
      return linearOn(
        x,
        picked.map((i) => train.labels[i]!),
      );
    } finally {
      x.dispose();
    }
  };
  return { linear, knn, fewLabel, dispose: () => tf.dispose([trainX, testX]) };
}

/** The end-to-end supervised baseline on one few-label draw: fixed schedule, its own linear layer scored. */
async function fewLabelSupervised(
  encoder: tf.LayersModel,
  picked: LabelledItems,
  test: LabelledItems,
  classes: number,
  seed: number,
  settings: Settings,
): Promise<number> {
  const trained = await trainClassifier(await randomInitLike(encoder), picked, classes, {
    ...settings.training,
    epochs: 1,
    minSteps: settings.fewLabelSteps,
    batchSize: Math.min(settings.training?.batchSize ?? 32, picked.items.length),
    seed,
  });
  try {
    return accuracy(predictClasses(trained.encoder, trained.head, test.items, settings.batchSize), test.labels);
  } finally {
    trained.encoder.dispose();
    trained.head.dispose();
  }
}

/** An independent copy of `encoder` (same architecture and weights). */
async function copyOf(encoder: tf.LayersModel): Promise<tf.LayersModel> {
  const copy = await randomInitLike(encoder);
  copy.setWeights(encoder.getWeights());
  return copy;
}

function summarize(scores: ProtocolScores[], reduce: (xs: number[]) => number): ProtocolScores {
  return {
    pretrained: reduce(scores.map((s) => s.pretrained)),
    randomInit: reduce(scores.map((s) => s.randomInit)),
    supervised: reduce(scores.map((s) => s.supervised)),
  };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Population standard deviation (over the draws made, not an estimate for more). */
const standardDeviation = (xs: number[]) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));
