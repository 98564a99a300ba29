import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { LarsOptimizer } from '../../training/lars.ts';

test.before(async () => {
  await tf.setBackend('cpu');
});

/** A weight and a bias with fixed gradients: one LARS step done by hand against the optimizer's. */
test('one step scales an adapted weight by eta |w| / |g + wd w| and leaves a bias to plain momentum SGD', (t) => {
  const w = tf.variable(tf.tensor1d([3, 4]), true, 'dense_9/kernel');
  const b = tf.variable(tf.tensor1d([1, -1]), true, 'dense_9/bias');
  const lr = 0.5;
  const wd = 0.01;
  const eta = 0.001;
  const opt = new LarsOptimizer(lr, { weightDecay: wd, eta, momentum: 0.9 });
  const gw = [0.6, 0.8];
  const gb = [0.2, 0.4];
  const apply = () => opt.applyGradients({ 'dense_9/kernel': tf.tensor1d(gw), 'dense_9/bias': tf.tensor1d(gb) });
  apply();
  // By hand: g = gw + wd w = [0.63, 0.84], |g| = 1.05, |w| = 5, trust = 0.001 * 5 / 1.05.
  const g = [0.6 + wd * 3, 0.8 + wd * 4];
  const trust = (eta * 5) / Math.hypot(g[0]!, g[1]!);
  const v1 = g.map((x) => lr * trust * x);
  const expectW = [3 - v1[0]!, 4 - v1[1]!];
  const expectB = [1 - lr * 0.2, -1 - lr * 0.4];
  const close = (a: ArrayLike<number>, e: number[]) => e.every((x, i) => Math.abs(a[i]! - x) < 1e-6);
  t.true(close(w.dataSync(), expectW), `weight ${Array.from(w.dataSync()).join(', ')} vs ${expectW.join(', ')}`);
  t.true(close(b.dataSync(), expectB), `bias ${Array.from(b.dataSync()).join(', ')} vs ${expectB.join(', ')}`);
  // Second step: the velocity carries 0.9 of the first.
  apply();
  const w1 = expectW;
  const g2 = [0.6 + wd * w1[0]!, 0.8 + wd * w1[1]!];
  const trust2 = (eta * Math.hypot(w1[0]!, w1[1]!)) / Math.hypot(g2[0]!, g2[1]!);
  const v2 = g2.map((x, i) => 0.9 * v1[i]! + lr * trust2 * x);
  t.true(close(w.dataSync(), [w1[0]! - v2[0]!, w1[1]! - v2[1]!]));
  opt.dispose();
  tf.dispose([w, b]);
});

test('getWeights / setWeights carry the momentum slots: a restored optimizer continues exactly', async (t) => {
  const run = async (restoreAfter: number | undefined) => {
    const w = tf.variable(tf.tensor1d([1, 2, 3]), true, `conv2d_${restoreAfter ?? 'x'}/kernel`);
    let opt = new LarsOptimizer(0.3);
    for (let step = 0; step < 4; step++) {
      if (step === restoreAfter) {
        const slots = await opt.getWeights();
        const copies = slots.map((s) => ({ name: s.name, tensor: s.tensor.clone() }));
        opt.dispose();
        opt = new LarsOptimizer(0.3);
        await opt.setWeights(copies);
        tf.dispose(copies.map((c) => c.tensor));
      }
      const name = w.name;
      opt.applyGradients({ [name]: tf.tensor1d([0.1 * (step + 1), -0.2, 0.3]) });
    }
    const out = Array.from(w.dataSync());
    opt.dispose();
    w.dispose();
    return out;
  };
  t.deepEqual(await run(2), await run(undefined));
});
