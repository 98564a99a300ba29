import test from 'ava';
import { TargetCounts } from '../../../tasks/text/tokenBaseline.ts';

test('the most frequent target wins, the lowest id among ties, whatever kind of number the ids are', (t) => {
  const counts = new TargetCounts();
  t.deepEqual(counts.baseline(), { id: -1, accuracy: 0, predictions: 0 });
  for (const id of [7, 3, 7, 3, 5000, 2.5, -1, 2.5]) counts.add(id);
  // 7, 3 and 2.5 twice each: 2.5 is the lowest.
  t.deepEqual(counts.baseline(), { id: 2.5, accuracy: 2 / 8, predictions: 8 });
  counts.add(3, 2);
  t.deepEqual(counts.baseline(), { id: 3, accuracy: 4 / 10, predictions: 10 });
  t.is(counts.get(3), 4);
  t.is(counts.get(5000), 1);
  t.is(counts.get(-1), 1);
  t.is(counts.get(99999), 0);
  counts.add(-1, 3);
  t.deepEqual(counts.baseline(), { id: -1, accuracy: 4 / 13, predictions: 13 });
});
