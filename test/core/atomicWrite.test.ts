import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileDurable } from '../../core/atomicWrite.ts';

test('writeFileDurable writes pieces one after the other, many of them, as one file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tempo-durable-'));
  try {
    // More pieces than one writev call takes (IOV_MAX is 1024 on Linux), of uneven sizes.
    const pieces = Array.from({ length: 2500 }, (_, i) =>
      Uint8Array.from({ length: (i % 7) + 1 }, (_, j) => (i + j) % 251),
    );
    const file = join(dir, 'pieces.bin');
    await writeFileDurable(file, pieces);
    const expected = Buffer.concat(pieces);
    t.deepEqual(await readFile(file), expected);
    // A string and a single buffer still go through as before, truncating what was there.
    await writeFileDurable(file, 'short');
    t.is(await readFile(file, 'utf8'), 'short');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
