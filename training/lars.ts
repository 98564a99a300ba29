import * as tf from '@tensorflow/tfjs';

/** Options of {@link LarsOptimizer}. */
export interface LarsOptions {
  /** Heavy-ball momentum. Default 0.9. */
  momentum?: number;
  /** L2 weight decay added to the gradient of adapted weights. Default 1e-6 (SimCLR). */
  weightDecay?: number;
  /** Trust coefficient η. Default 0.001 (You et al.; SimCLR). */
  eta?: number;
  /** Weights left out of weight decay and of the layer-wise adaptation (plain momentum SGD). Default: biases and batch norm's gamma and beta. */
  exclude?: (name: string) => boolean;
}

/** A named slot, as `tf.Optimizer.getWeights` gives them. */
interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

const BIAS_AND_NORM = /(^|\/)(bias|gamma|beta)(_\d+)?$/;

/**
 * LARS (You, Gitman, Ginsburg 2017, "Large Batch Training of Convolutional Networks"), as SimCLR trains with it:
 * momentum SGD in which each weight tensor's step is scaled by its trust ratio `η ‖w‖ / ‖g + λw‖`, so every layer
 * moves by about the same fraction of its norm whatever its gradient's scale; biases and batch-norm parameters are
 * left out of the adaptation and of the weight decay (SimCLR's `exclude_from_layer_adaptation`).
 *
 *     g ← ∇w + λ w            (adapted weights only)
 *     r ← η ‖w‖ / ‖g‖         (1 where either norm is 0, or for excluded weights)
 *     v ← μ v + lr · r · g
 *     w ← w − v
 *
 * Its slots (one momentum per weight) are `getWeights`/`setWeights` pairs as tfjs's own optimizers', so the
 * trainer's checkpoints hold them and `--resume` continues exactly.
 *
 * @example
 * const optimizer = new LarsOptimizer(0.3 * 256 / 256, { weightDecay: 1e-6 });
 */
export class LarsOptimizer extends tf.Optimizer {
  static get className(): string {
    return 'LARS';
  }

  readonly momentum: number;
  readonly weightDecay: number;
  readonly eta: number;
  readonly #exclude: (name: string) => boolean;
  #slots: { originalName: string; variable: tf.Variable }[] = [];

  constructor(
    public learningRate: number,
    options: LarsOptions = {},
  ) {
    super();
    this.momentum = options.momentum ?? 0.9;
    this.weightDecay = options.weightDecay ?? 1e-6;
    this.eta = options.eta ?? 0.001;
    this.#exclude = options.exclude ?? ((name) => BIAS_AND_NORM.test(name));
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const names = Array.isArray(variableGradients)
      ? variableGradients.map((item) => item.name)
      : Object.keys(variableGradients);
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name]!;
      this.#slots[i] ??= {
        originalName: `${name}/momentum`,
        variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
      };
      const gradient = Array.isArray(variableGradients) ? variableGradients[i]!.tensor : variableGradients[name];
      if (!gradient) return;
      const velocity = this.#slots[i]!.variable;
      tf.tidy(() => {
        let step: tf.Tensor = gradient;
        let rate: tf.Tensor | number = this.learningRate;
        if (!this.#exclude(name)) {
          step = tf.add(gradient, tf.mul(value, this.weightDecay));
          const weightNorm = tf.norm(value);
          const stepNorm = tf.norm(step);
          const trust = tf.where(
            tf.logicalAnd(tf.greater(weightNorm, 0), tf.greater(stepNorm, 0)),
            tf.div(tf.mul(weightNorm, this.eta), stepNorm),
            tf.onesLike(weightNorm),
          );
          rate = tf.mul(trust, this.learningRate);
        }
        const next = tf.add(tf.mul(velocity, this.momentum), tf.mul(step, rate));
        velocity.assign(next);
        value.assign(tf.sub(value, next));
      });
    });
    this.incrementIterations();
  }

  override dispose(): void {
    tf.dispose(this.#slots.map((slot) => slot.variable));
    this.#slots = [];
  }

  override async getWeights(): Promise<NamedTensor[]> {
    return [
      await this.saveIterations(),
      ...this.#slots.map((slot) => ({ name: slot.originalName, tensor: slot.variable })),
    ];
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const slots = await this.extractIterations(weightValues);
    tf.dispose(this.#slots.map((slot) => slot.variable));
    this.#slots = slots.map((slot) => ({ originalName: slot.name, variable: slot.tensor.variable(false) }));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      learningRate: this.learningRate,
      momentum: this.momentum,
      weightDecay: this.weightDecay,
      eta: this.eta,
    };
  }
}
