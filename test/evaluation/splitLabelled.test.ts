import test from 'ava';
import { splitLabelled, takePerClass } from '../../evaluation/splitLabelled.ts';

test('splitLabelled keeps each group on one side, stratifies by label and is reproducible from its seed', (t) => {
  // 40 groups (clips) of 3 items; 4 labels, 10 groups each.
  const groups = Array.from({ length: 120 }, (_, i) => `clip${Math.floor(i / 3)}`);
  const labels = groups.map((g) => Number(g.slice(4)) % 4);
  const data = { items: labels.map((l) => Float32Array.of(l)), labels, groups };
  const { train, test: held } = splitLabelled(data, 0.3, 5);
  const trainGroups = new Set(train.groups);
  t.true(held.groups!.every((g) => !trainGroups.has(g)));
  t.is(train.items.length + held.items.length, 120);
  // 3 of each label's 10 clips go to test: 3 clips x 3 frames x 4 labels.
  for (let label = 0; label < 4; label++) t.is(held.labels.filter((l) => l === label).length, 9);
  t.deepEqual(splitLabelled(data, 0.3, 5).test.groups, held.groups);
  t.notDeepEqual(splitLabelled(data, 0.3, 6).test.groups, held.groups);
});

test('splitLabelled leaves every label at least one training item', (t) => {
  const data = { items: [0, 1, 2, 3].map((v) => Float32Array.of(v)), labels: [0, 1, 1, 2] };
  const { train } = splitLabelled(data, 0.9, 0);
  t.deepEqual([...new Set(train.labels)].sort(), [0, 1, 2]);
});

test('takePerClass draws n items of each label, fewer where a label has fewer, reproducibly', (t) => {
  const labels = [...Array(30).fill(0), ...Array(30).fill(1), 2, 2];
  const picked = takePerClass(labels, 10, 3);
  t.deepEqual(
    [0, 1, 2].map((c) => picked.filter((i) => labels[i] === c).length),
    [10, 10, 2],
  );
  t.is(new Set(picked).size, picked.length);
  t.deepEqual(takePerClass(labels, 10, 3), picked);
  t.notDeepEqual(takePerClass(labels, 10, 4), picked);
});
