import * as tf from '@tensorflow/tfjs';

/**
 * The tfjs-layers `BatchNormalization` and `Conv2D` with cheaper training steps, registered in place of the stock
 * classes under the same class names, so saved models stay standard (`model.json` names `BatchNormalization` and
 * `Conv2D`, loadable by any tfjs) and every model this process builds or loads trains the cheaper way. Inference
 * runs the stock code, and the forward values in training are the stock ones bit for bit; only the gradients are
 * computed another way (the same formulas, in fewer passes), so losses agree with the stock layers to float
 * rounding.
 *
 * Why (issue 11, the default frame encoder's Adam step on wasm): the stock batch normalization's gradient runs
 * through `tf.moments`' own gradients, about 17 full-size passes per layer (each `Mean` gradient multiplies by a
 * tensor of ones, each broadcast `Sub` sums back), a third of the step; the stock `Conv2D` runs `tf.fused.conv2d`,
 * whose custom gradient computes the input gradient even for the first layer, whose input is data.
 */

/** The parts of the stock layer classes this file reads (private in their typings). */
interface BatchNormInternals {
  axis: number;
  momentum: number;
  epsilon: number;
  gamma: tf.LayerVariable | null;
  beta: tf.LayerVariable | null;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

interface Conv2DInternals {
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
  strides: [number, number];
  padding: 'same' | 'valid';
  dataFormat: 'channelsFirst' | 'channelsLast';
  dilationRate: [number, number];
  activation: { apply(x: tf.Tensor): tf.Tensor };
}

type LayerClass = (new (config: object) => tf.layers.Layer) & { className: string };

const StockBatchNormalization = tf.layers.batchNormalization({}).constructor as LayerClass;
const StockConv2D = tf.layers.conv2d({ filters: 1, kernelSize: 1 }).constructor as LayerClass;

/**
 * Batch normalization in training for a channels-last input normalized over every axis but the last, as
 * `tf.layers.batchNormalization` computes it (`tf.moments`, then `tf.batchNorm`), with one custom gradient for
 * the whole of it. With m the count reduced over, x̂ = (x - mean) / sqrt(var + eps) and g the scale:
 *   dβ = Σ dy,   dg = Σ dy·x̂,   dx = g / sqrt(var + eps) · (dy - dβ / m - x̂ · dg / m),
 * which is what the stock chain of gradients adds up to (through the mean and the variance), in 7 passes over the
 * input instead of about 17. Returns the normalized input and the batch's mean and variance (for the moving
 * averages; they carry no gradient, as the stock layer's updates do not).
 */
export function batchNormInTraining(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
): { normed: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  const channels = x.shape.at(-1)!;
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const count = x.size / channels;
  let stats: [tf.Tensor, tf.Tensor] | undefined;
  const normalize = tf.customGrad((xIn, gammaIn, betaIn, save) => {
    const [input, scale, offset] = [xIn, gammaIn, betaIn] as tf.Tensor[];
    // tf.moments' own ops, so that the forward values are the stock layer's bit for bit.
    const mean = tf.mean(input!, axes);
    const centred = tf.sub(input!, mean);
    const variance = tf.mean(tf.square(centred), axes);
    stats = [tf.keep(mean), tf.keep(variance)];
    const value = tf.batchNorm(input!, mean, variance, offset, scale, epsilon);
    (save as tf.GradSaveFunc)([centred, variance, scale!]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xMinusMean, batchVariance, g] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const rstd = tf.rsqrt(tf.add(batchVariance, epsilon));
        const dBeta = tf.sum(dy, axes);
        // Σ dy·(x - mean), then dg = that / sqrt(var + eps).
        const dyCentred = tf.sum(tf.mul(dy, xMinusMean), axes);
        const dGamma = tf.mul(dyCentred, rstd);
        // dx = dy·a + (x - mean)·b + c with per-channel a, b, c.
        const a = tf.mul(g, rstd);
        const b = tf.mul(tf.mul(a, tf.mul(rstd, rstd)), tf.div(dyCentred, -count));
        const c = tf.mul(a, tf.div(dBeta, -count));
        const dx = tf.add(tf.add(tf.mul(dy, a), tf.mul(xMinusMean, b)), c);
        return [dx, dGamma, dBeta];
      },
    };
  });
  const normed = normalize(x, gamma, beta);
  const [mean, variance] = stats!;
  return { normed, mean, variance };
}

/**
 * `BatchNormalization` whose training step uses {@link batchNormInTraining}; inference, config and weights are the
 * stock layer's. Inputs normalized over other axes than all-but-the-last, or without scale or centre, run the
 * stock code.
 */
export class BatchNormalization extends StockBatchNormalization {
  static override className = 'BatchNormalization';

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor | tf.Tensor[] {
    const self = this as unknown as BatchNormInternals;
    const input = Array.isArray(inputs) ? inputs[0]! : inputs;
    const axis = self.axis >= 0 ? self.axis : self.axis + input.rank;
    if (!kwargs.training || axis !== input.rank - 1 || !self.gamma || !self.beta) return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const { normed, mean, variance } = batchNormInTraining(
        input,
        self.gamma!.read(),
        self.beta!.read(),
        self.epsilon,
      );
      // The moving averages as the stock layer updates them.
      for (const [variable, value] of [
        [self.movingMean, mean],
        [self.movingVariance, variance],
      ] as const) {
        const old = variable.read();
        variable.write(tf.sub(old, tf.mul(tf.sub(old, value), 1 - self.momentum)));
      }
      tf.dispose([mean, variance]);
      return normed;
    });
  }
}

/**
 * `Conv2D` whose training step runs the plain `tf.conv2d` (plus bias and activation) instead of `tf.fused.conv2d`:
 * the plain op's gradient computes the input gradient only when something upstream needs it, so the first layer
 * of a network skips it (a sixth of the default frame encoder's backward pass). Inference runs the stock (fused)
 * code. Channels-first inputs run the stock code.
 */
export class Conv2D extends StockConv2D {
  static override className = 'Conv2D';

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor | tf.Tensor[] {
    const self = this as unknown as Conv2DInternals;
    if (!kwargs.training || self.dataFormat !== 'channelsLast') return super.call(inputs, kwargs);
    const input = (Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D;
    return tf.tidy(() => {
      let y: tf.Tensor = tf.conv2d(
        input,
        self.kernel.read() as tf.Tensor4D,
        self.strides,
        self.padding,
        'NHWC',
        self.dilationRate,
      );
      if (self.bias) y = tf.add(y, self.bias.read());
      return self.activation.apply(y);
    });
  }
}

tf.serialization.registerClass(
  BatchNormalization as unknown as tf.serialization.SerializableConstructor<tf.layers.Layer>,
);
tf.serialization.registerClass(Conv2D as unknown as tf.serialization.SerializableConstructor<tf.layers.Layer>);
