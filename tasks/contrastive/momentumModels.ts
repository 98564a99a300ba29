import * as tf from '@tensorflow/tfjs';

/** A model with the same architecture and weights as `model`, its variables its own. */
export function cloneModel(model: tf.LayersModel): tf.LayersModel {
  const Model = model.constructor as unknown as {
    fromConfig(cls: unknown, config: tf.serialization.ConfigDict): tf.LayersModel;
  };
  const copy = Model.fromConfig(Model, model.getConfig());
  copy.setWeights(model.getWeights());
  return copy;
}

/**
 * Momentum (EMA) copies of online models, as MoCo's key encoder and BYOL's target network: `update` moves every
 * weight of each copy towards its online model's (θ' = m θ' + (1 - m) θ, batch-norm statistics included, so the
 * copies run in inference mode). `tensors` names the weights `<prefix><k>/<i>` (model k, weight i in `getWeights`
 * order) for checkpoints; `restore` reads them back.
 */
export class MomentumModels {
  readonly copies: tf.LayersModel[];

  constructor(
    readonly online: readonly tf.LayersModel[],
    readonly prefix: string,
  ) {
    this.copies = online.map(cloneModel);
  }

  update(momentum: number): void {
    tf.tidy(() => {
      this.copies.forEach((copy, k) =>
        copy.weights.forEach((w, i) => {
          const online = this.online[k]!.weights[i]!.read();
          w.write(tf.add(tf.mul(w.read(), momentum), tf.mul(online, 1 - momentum)));
        }),
      );
    });
  }

  tensors(): tf.NamedTensorMap {
    const named: tf.NamedTensorMap = {};
    this.copies.forEach((copy, k) => copy.getWeights().forEach((w, i) => (named[`${this.prefix}${k}/${i}`] = w)));
    return named;
  }

  restore(saved: tf.NamedTensorMap): void {
    this.copies.forEach((copy, k) =>
      copy.setWeights(copy.getWeights().map((_, i) => saved[`${this.prefix}${k}/${i}`]!)),
    );
  }

  dispose(): void {
    this.copies.forEach((copy) => copy.dispose());
  }
}
