import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../core/rng.ts';
import { selectBackend } from '../../models/backend.ts';
import { evaluateEncoder, type EncoderEvaluation } from '../../evaluation/evaluateEncoder.ts';
import type { LabelledItems } from '../../evaluation/linearProbe.ts';
import { splitLabelled } from '../../evaluation/splitLabelled.ts';
import { accuracy } from '../../evaluation/accuracy.ts';
import { predictClasses, trainClassifier } from '../../evaluation/trainClassifier.ts';

test.before(() => selectBackend({ backend: 'wasm', log: () => {} }));

const CLASSES = 4;

/**
 * 16 values an item: class c adds 4 to value c; values 0-3 carry unit noise, values 4-15 noise of standard
 * deviation 6, which drowns the signal in any projection that does not single out values 0-3.
 */
function items(count: number, seed: number): LabelledItems {
  const rng = new Rng(seed);
  const out: LabelledItems = { items: [], labels: [] };
  for (let i = 0; i < count; i++) {
    const label = i % CLASSES;
    const x = Float32Array.from({ length: 16 }, (_, d) => rng.normal() * (d < 4 ? 1 : 6));
    x[label]! += 4;
    out.items.push(x);
    out.labels.push(label);
  }
  return out;
}

/** A linear encoder 16 -> 4; "pretrained" means its weights read values 0-3 exactly, the useful ones. */
function encoder(pretrained: boolean): tf.LayersModel {
  const input = tf.input({ shape: [16] });
  const dense = tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) });
  const model = tf.model({ inputs: input, outputs: dense.apply(input) as tf.SymbolicTensor });
  if (pretrained) {
    const kernel = tf.tidy(() => tf.concat([tf.eye(4), tf.zeros([12, 4])]));
    const bias = tf.zeros([4]);
    model.setWeights([kernel, bias]);
    tf.dispose([kernel, bias]);
  }
  return model;
}

const OPTIONS = {
  draws: 3,
  labelsPerClass: 10,
  training: { epochs: 15, learningRate: 0.02 },
  fewLabelSteps: 60,
};

function everyAccuracy(report: EncoderEvaluation): number[] {
  return [...Object.values(report.protocols), report.fewLabelSpread].flatMap((scores) => Object.values(scores));
}

test.serial(
  'evaluateEncoder ranks an encoder that reads the signal above its random init in every protocol',
  async (t) => {
    const { train, test: held } = splitLabelled(items(400, 1), 0.3, 0);
    const model = encoder(true);
    const before = tf.memory().numTensors;
    const report = await evaluateEncoder(model, train, held, OPTIONS);
    t.log(JSON.stringify(report.protocols));
    t.is(tf.memory().numTensors, before, 'no tensor leaks');
    t.like(report, { layer: 'output', labelsPerClass: 10, draws: 3, classes: 4, trainCount: 280, testCount: 120 });
    for (const value of everyAccuracy(report)) t.true(Number.isFinite(value) && value >= 0 && value <= 1, `${value}`);
    const { linear, fewLabel, knn, fineTune } = report.protocols;
    // The Bayes rate is about 0.95 for the encoder that reads values 0-3; a random projection keeps ~0.4.
    t.true(linear.pretrained > 0.85 && linear.pretrained > linear.randomInit + 0.2, JSON.stringify(linear));
    t.true(knn.pretrained > 0.8 && knn.pretrained > knn.randomInit + 0.2, JSON.stringify(knn));
    t.true(fewLabel.pretrained > 0.8 && fewLabel.pretrained > fewLabel.randomInit + 0.2, JSON.stringify(fewLabel));
    // Supervised training finds values 0-3 from the labels; fine-tuning starts there and stays.
    t.true(linear.supervised > linear.randomInit + 0.2, JSON.stringify(linear));
    t.true(fineTune.pretrained > 0.85, JSON.stringify(fineTune));
    t.is(fineTune.randomInit, linear.supervised);
    model.dispose();
  },
);

test.serial('broken control: with shuffled training labels every protocol scores near chance', async (t) => {
  const { train, test: held } = splitLabelled(items(400, 1), 0.3, 0);
  const shuffled = { ...train, labels: new Rng(7).shuffle([...train.labels]) };
  const model = encoder(true);
  const report = await evaluateEncoder(model, shuffled, held, OPTIONS);
  const { linear, fewLabel, knn, fineTune } = report.protocols;
  // Chance is 0.25; 120 test items put 2 standard errors at about 0.08.
  for (const [name, value] of Object.entries({ ...linear, ...fewLabel, ...knn, ...fineTune }))
    t.true(value < 0.4, `${name} ${value}`);
  t.true(
    [linear, knn, fewLabel].every((s) => s.pretrained < 0.4),
    JSON.stringify(report.protocols),
  );
  model.dispose();
});

test.serial('trainClassifier keeps the weights of the epoch best on validation and leaks no tensor', async (t) => {
  const { train, test: validation } = splitLabelled(items(200, 2), 0.3, 0);
  // Fine-tuning the encoder that reads values 0-3: its linear layer alone has to be learnt.
  const model = encoder(true);
  const before = tf.memory().numTensors;
  const trained = await trainClassifier(model, train, CLASSES, { epochs: 6, learningRate: 0.02, validation });
  t.true(trained.epoch >= 1 && trained.epoch <= 6);
  t.is(
    accuracy(predictClasses(trained.encoder, trained.head, validation.items), validation.labels),
    trained.validationAccuracy,
  );
  t.true(trained.validationAccuracy > 0.8, `${trained.validationAccuracy}`);
  trained.head.dispose();
  t.is(tf.memory().numTensors, before);
  model.dispose();
});
