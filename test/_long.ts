import test from 'ava';

/**
 * Learning checks that run longer than the suite's budget allows (`npm test` must fit 10 minutes on 2 cores): each
 * trains for 30 s to 2 min, twice with its broken control. `npm test` lists them as skipped; `npm run bench --
 * learning` runs them (the same tests, with TEMPO_LONG_TESTS=1) and prints each one's result and figures.
 */
export const LONG_TESTS = process.env.TEMPO_LONG_TESTS === '1';

/** `test.serial`, run only with TEMPO_LONG_TESTS=1 (`npm run bench -- learning`). */
export const longSerial = LONG_TESTS ? test.serial : test.serial.skip;
