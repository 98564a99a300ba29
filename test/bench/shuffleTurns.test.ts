import test from 'ava';
import { Rng } from '../../core/rng.ts';
import { shuffleTurns } from '../../bench/dialogueCoherence.ts';

// Regression: bench/textTasks.ts had its own copy that redrew until the order changed, forever on such dialogues.
test('turns that are all equal come back as they are instead of looping forever', (t) => {
  t.deepEqual(shuffleTurns(['same', 'same', 'same'], new Rng(1)), ['same', 'same', 'same']);
  t.deepEqual(shuffleTurns(['alone'], new Rng(1)), ['alone']);
  t.deepEqual(shuffleTurns([], new Rng(1)), []);
});

test('other dialogues come back in another order of the same turns, reproducibly for a seed', (t) => {
  const turns = ['hi', 'hi', 'how are you?'];
  for (let seed = 0; seed < 50; seed++) {
    const out = shuffleTurns(turns, new Rng(seed));
    t.notDeepEqual(out, turns);
    t.deepEqual([...out].sort(), [...turns].sort());
    t.deepEqual(shuffleTurns(turns, new Rng(seed)), out);
  }
});
