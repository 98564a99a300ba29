/** Generated text and dialogue fixtures for the text CLI, shard and serve tests (no real data needed). */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng } from '../../core/rng.ts';

const WORDS =
  'the cat dog sat on mat ran to house a big small red blue quickly slowly went home saw bird tree river stone light'.split(
    ' ',
  );

function sentence(rng: Rng): string {
  const n = 4 + rng.int(7);
  const words = Array.from({ length: n }, () => WORDS[rng.int(WORDS.length)]!);
  return words.join(' ').replace(/^./, (c) => c.toUpperCase()) + '.';
}

/** A corpus of `paragraphs` paragraphs of 3..5 sentences, blank lines between them. */
export async function writeCorpus(dir: string, name: string, paragraphs: number, seed = 1): Promise<string> {
  const rng = new Rng(seed);
  const text =
    Array.from({ length: paragraphs }, () =>
      Array.from({ length: 3 + rng.int(3) }, () => sentence(rng)).join(' '),
    ).join('\n\n') + '\n';
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/** A DailyDialog-format file of `count` dialogues of 3..6 turns. */
export async function writeDailyDialog(dir: string, name: string, count: number, seed = 2): Promise<string> {
  const rng = new Rng(seed);
  const lines = Array.from({ length: count }, () =>
    Array.from({ length: 3 + rng.int(4) }, (_, i) => `${i === 0 ? 'Hello' : 'Well'} , ${sentence(rng)} __eou__`).join(
      ' ',
    ),
  );
  const path = join(dir, name);
  await writeFile(path, lines.join('\n') + '\n');
  return path;
}
