import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { pretrainText } from '../../recipes/pretrainText.ts';
import { writeReport } from '../../recipes/report/writeReport.ts';
import { parseTaskList } from '../../tasks/registry.ts';
import { writeDailyDialog } from '../cli/_textFixtures.ts';
import { launchChromium, watchedPage } from './_chromium.ts';

let browser: Browser;
let dir: string;

test.before(async () => {
  browser = await launchChromium();
  dir = await mkdtemp(join(tmpdir(), 'tempo-dialogue-report-'));
});
test.after.always(async () => {
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the dialogue view shows each turn of a sample dialogue with its coherence score, shaded by it', async (t) => {
  const daily = await writeDailyDialog(dir, 'dialogues.txt', 16);
  const run = join(dir, 'run');
  const trained = await pretrainText({
    dialogues: [daily],
    tasks: parseTaskList('dialogue-order'),
    vocabSize: 80,
    taskConfig: { maxLength: 10, embeddingSize: 8 },
    hiddenSize: 8,
    steps: 3,
    batchSize: 4,
    outDir: run,
  });
  trained.encoder.dispose();
  Object.values(trained.heads).forEach((h) => h.dispose());
  const { path, content } = await writeReport({ run, dialogueCount: 3 });
  const dialogues = content.dialogues!;
  t.is(dialogues.length, 3);

  const { page, watch } = await watchedPage(browser);
  await page.goto(pathToFileURL(path).href);
  const shown = await page.$$eval('.dialogue', (items) =>
    items.map((d) => ({
      scores: [...d.querySelectorAll('.turn-score')].map((s) => s.textContent),
      shades: [...d.querySelectorAll<HTMLElement>('.turn')].map((s) => s.style.background),
    })),
  );
  t.is(shown.length, 3);
  dialogues.forEach((d, k) => {
    t.deepEqual(
      shown[k]!.scores,
      d.turns.map((turn) => (turn.score === null ? '-' : turn.score.toFixed(3))),
    );
    t.true(
      d.turns.every((turn) => turn.score !== null && turn.score > 0 && turn.score < 1),
      'every turn is scored',
    );
  });
  // Every turn is shaded: scored turns from red (0) to green (1), none grey.
  t.true(shown.flatMap((d) => d.shades).every((shade) => shade.startsWith('rgb') && shade !== 'rgb(238, 238, 238)'));
  t.deepEqual(watch.errors, []);
  t.deepEqual(watch.network, []);
  await page.close();
});
