import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../core/errors.ts';
import { accuracy } from './accuracy.ts';
import { fitLinearClassifier, type LinearClassifierOptions } from './linearClassifier.ts';
import { embed, type LabelledItems } from './linearProbe.ts';

/** The suffix of a layer spec that asks for global average pooling: `relu1:pool`. */
export const POOL_SUFFIX = ':pool';

/** Widest flattened feature map `best` tries as is (wider ones are only tried pooled). */
export const MAX_FLAT_WIDTH = 2048;

/**
 * A parsed `--layer` spec: `output` (the encoder's output), a layer name (its output flattened), or a layer name
 * with `:pool` (its feature map `[H, W, C]` averaged over H and W, `[C]`: the global average pooling of NIN and
 * RotNet's per-block probes, for blocks whose flattened map is too wide for a probe).
 */
export interface LayerSpec {
  /** The layer read, or 'output'. */
  readonly layer: string;
  /** Global average pooling over the feature map's height and width instead of flattening. */
  readonly pool: boolean;
}

/**
 * Parses a `--layer` value (`output`, `relu1`, `relu1:pool`) against `encoder`'s layers.
 *
 * @throws OptionError naming the value and the layers to choose from (an unknown layer, or `:pool` on a layer
 *   whose output is not a feature map).
 */
export function parseLayerSpec(encoder: tf.LayersModel, spec: string): LayerSpec {
  const pool = spec.endsWith(POOL_SUFFIX);
  const layer = pool ? spec.slice(0, -POOL_SUFFIX.length) : spec;
  if (layer === 'output' && !pool) return { layer, pool };
  const names = encoder.layers.map((l) => l.name);
  if (!names.includes(layer)) {
    throw new OptionError(
      '--layer',
      spec,
      `'output', 'best', or a layer name (flattened) or name:pool (globally averaged): ${names.join(', ')}`,
    );
  }
  if (pool && outputShapeOf(encoder, layer).length !== 4) {
    throw new OptionError(
      '--layer',
      spec,
      `':pool' on a layer with a feature map [H, W, C]: ${featureMapLayers(encoder).join(', ')}`,
    );
  }
  return { layer, pool };
}

/**
 * The model from the encoder's input to the feature a spec names, `[batch, dim]` or of higher rank (which `embed`
 * flattens). It shares the encoder's weights and owns none: nothing to dispose beyond the encoder.
 *
 * @example
 * const features = featureModel(encoder, parseLayerSpec(encoder, 'relu1:pool')); // [batch, 32]
 */
export function featureModel(encoder: tf.LayersModel, spec: LayerSpec): tf.LayersModel {
  if (spec.layer === 'output' && !spec.pool) return encoder;
  let output = encoder.getLayer(spec.layer).output as tf.SymbolicTensor;
  if (spec.pool) output = tf.layers.globalAveragePooling2d({}).apply(output) as tf.SymbolicTensor;
  return tf.model({ inputs: encoder.inputs, outputs: output });
}

/** The spec written back as `--layer` takes it. */
export function formatLayerSpec(spec: LayerSpec): string {
  return spec.pool ? spec.layer + POOL_SUFFIX : spec.layer;
}

/**
 * What `--layer best` tries, shallow to deep: each feature map that ends a block (the output of a ReLU layer of
 * rank 4, `relu0`, `relu1`... in the frame encoder) globally averaged, and flattened too when that is at most
 * `maxFlatWidth` values; then the encoder's output.
 */
export function layerCandidates(encoder: tf.LayersModel, maxFlatWidth = MAX_FLAT_WIDTH): LayerSpec[] {
  const blocks = encoder.layers
    .filter((l) => l.getClassName() === 'ReLU' || l.getClassName() === 'Activation')
    .map((l) => l.name)
    .filter((name) => outputShapeOf(encoder, name).length === 4);
  return [
    ...blocks.flatMap((layer) => {
      const width = outputShapeOf(encoder, layer)
        .slice(1)
        .reduce((a, b) => a * b, 1);
      return [{ layer, pool: true }, ...(width <= maxFlatWidth ? [{ layer, pool: false }] : [])];
    }),
    { layer: 'output', pool: false },
  ];
}

/** Options of `chooseLayer`. */
export interface ChooseLayerOptions {
  /** Specs to try; default `layerCandidates(encoder)`. */
  candidates?: LayerSpec[];
  /** The logistic regression fitted on each candidate. */
  probe?: LinearClassifierOptions;
  /** Items per forward pass. Default 64. */
  batchSize?: number;
}

/** What `chooseLayer` picked and why. */
export interface LayerChoice {
  /** The spec picked, as `--layer` takes it (`relu1:pool`). */
  layer: string;
  /** How it was picked. */
  criterion: string;
  /** Validation accuracy of every candidate tried, by spec. */
  scores: Record<string, number>;
}

/**
 * Picks the block to probe from labels alone, never the test set: for each candidate, a logistic regression on the
 * encoder's frozen features of `fit` scored on `validation` (both parts of the training labels); the best
 * accuracy wins (ties: the shallower). The caller then reads that same block of every encoder it compares, so the
 * baselines are probed where the pretrained encoder was chosen to be read.
 *
 * @example
 * const { train: fit, test: validation } = splitLabelled(train, 0.2, 1);
 * const { layer } = chooseLayer(encoder, fit, validation); // 'relu1:pool'
 */
export function chooseLayer(
  encoder: tf.LayersModel,
  fit: LabelledItems,
  validation: LabelledItems,
  options: ChooseLayerOptions = {},
): LayerChoice {
  const { candidates = layerCandidates(encoder), batchSize = 64 } = options;
  if (candidates.length === 0) throw new OptionError('--layer', 'best', 'an encoder with at least one block');
  const classes = Math.max(...fit.labels, ...validation.labels) + 1;
  const scores: Record<string, number> = {};
  for (const spec of candidates) {
    const model = featureModel(encoder, spec);
    const [fitX, validationX] = [embed(model, fit.items, batchSize), embed(model, validation.items, batchSize)];
    const classifier = fitLinearClassifier(fitX, fit.labels, classes, options.probe);
    scores[formatLayerSpec(spec)] = accuracy(classifier.predict(validationX), validation.labels);
    classifier.dispose();
    tf.dispose([fitX, validationX]);
  }
  const best = Object.entries(scores).reduce((a, b) => (b[1] > a[1] ? b : a));
  return {
    layer: best[0],
    criterion: `linear probe of the pretrained encoder, ${fit.items.length} training labels fitted, scored on ${validation.items.length} held-out training labels`,
    scores,
  };
}

/** Layers whose output is a feature map `[batch, H, W, C]`. */
function featureMapLayers(encoder: tf.LayersModel): string[] {
  return encoder.layers.map((l) => l.name).filter((name) => outputShapeOf(encoder, name).length === 4);
}

function outputShapeOf(encoder: tf.LayersModel, name: string): number[] {
  return (encoder.getLayer(name).output as tf.SymbolicTensor).shape.map((d) => d ?? 1);
}
