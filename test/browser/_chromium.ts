// Test helper, not a test: Debian's chromium driven by playwright-core, and the tiny runs the browser tests open.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { generateLabelledClips } from '../../fixtures/syntheticVideos.ts';
import { pretrainVideo } from '../../recipes/pretrainVideo.ts';
import { parseTaskList } from '../../tasks/registry.ts';
import type { TrainHook } from '../../training/trainer.ts';

/** The browser the tests drive: `CHROMIUM` when set, else Debian's package (`.ci/run` installs it). */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/**
 * Starts headless chromium, or fails at once with what to do when it is missing (never waits on a download:
 * playwright-core fetches no browser).
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `browser tests need chromium at ${CHROMIUM}: install it (apt-get install chromium, as .ci/run does) or set CHROMIUM=/path/to/chromium`,
    );
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
}

/** What a page did besides rendering: console errors, uncaught exceptions, and every request that was not `file:`. */
export interface PageWatch {
  errors: string[];
  network: string[];
}

/**
 * A page that records console errors and page errors, and refuses (and records) every request that is not a local
 * file, so a test can say the page made none.
 */
export async function watchedPage(
  browser: Browser,
  viewport = { width: 1400, height: 1000 },
): Promise<{ page: Page; watch: PageWatch }> {
  const page = await browser.newPage({ viewport });
  page.setDefaultTimeout(60_000);
  const watch: PageWatch = { errors: [], network: [] };
  page.on('console', (m) => m.type() === 'error' && watch.errors.push(m.text()));
  page.on('pageerror', (e) => watch.errors.push(e.message));
  await page.route('**/*', async (route) => {
    const url = route.request().url();
    if (url.startsWith('file:') || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
    watch.network.push(url);
    return route.abort();
  });
  return { page, watch };
}

/**
 * A tiny order-verification run on 8 fixture clips (4 shape classes, 32x32): `steps` steps, a checkpoint every 5,
 * so a report hook sees checkpoints. Returns the run folder and the labelled clips' CSV.
 */
export async function tinyFrameRun(
  dir: string,
  options: { steps?: number; hooks?: TrainHook[] } = {},
): Promise<{ run: string; labelsFile: string }> {
  const clips = await generateLabelledClips({
    dir: `${dir}/clips`,
    seed: 5,
    count: 8,
    width: 32,
    height: 32,
    frames: 24,
    fps: 12,
    classes: 4,
  });
  const run = `${dir}/run`;
  const result = await pretrainVideo({
    videos: clips.clips.map((c) => c.path),
    tasks: parseTaskList('order'),
    steps: options.steps ?? 12,
    batchSize: 8,
    learningRate: 3e-3,
    seed: 0,
    outDir: run,
    checkpointEvery: 5,
    format: { width: 32, height: 32 },
    encoder: { featureSize: 16, width: 4, blocks: 2 },
    hooks: options.hooks,
  });
  result.encoder.dispose();
  Object.values(result.heads).forEach((h) => h.dispose());
  return { run, labelsFile: clips.labelsFile };
}
