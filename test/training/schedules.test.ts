import test from 'ava';
import { learningRateAt, momentumFactorAt, parseSchedule } from '../../training/schedules.ts';
import { OptionError } from '../../core/errors.ts';

const close = (a: number, b: number) => Math.abs(a - b) < 1e-12;

test('constant without warm-up is the base rate at every step', (t) => {
  for (const step of [1, 50, 100]) t.is(learningRateAt(step, { base: 0.1, totalSteps: 100 }), 0.1);
});

test('linear warm-up rises to the base rate, then the cosine falls to 0 at the last step', (t) => {
  const o = { base: 0.1, schedule: 'cosine' as const, warmupSteps: 10, totalSteps: 110 };
  t.true(close(learningRateAt(1, o), 0.01));
  t.true(close(learningRateAt(5, o), 0.05));
  t.true(close(learningRateAt(10, o), 0.1));
  t.true(close(learningRateAt(60, o), 0.05), `half way ${learningRateAt(60, o)}`);
  t.true(close(learningRateAt(110, o), 0));
  // Monotone after the warm-up.
  const rates = Array.from({ length: 100 }, (_, i) => learningRateAt(11 + i, o));
  t.true(rates.every((r, i) => i === 0 || r <= rates[i - 1]!));
});

test('the cosine momentum factor goes from 1 to 0; constant stays 1', (t) => {
  t.true(close(momentumFactorAt(0, 'cosine', 100), 1));
  t.true(close(momentumFactorAt(50, 'cosine', 100), 0.5));
  t.true(close(momentumFactorAt(100, 'cosine', 100), 0));
  t.is(momentumFactorAt(37, 'constant', 100), 1);
  // With base momentum 0.99 the EMA momentum at the end is 1 (BYOL).
  t.true(close(1 - (1 - 0.99) * momentumFactorAt(100, 'cosine', 100), 1));
});

test('a bad schedule name is refused naming the flag', (t) => {
  t.throws(() => parseSchedule('--lr-schedule', 'linear'), {
    instanceOf: OptionError,
    message: /--lr-schedule.*cosine/,
  });
});
