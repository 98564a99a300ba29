import test, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { readMetrics, type MetricsLine } from '../../recipes/report/metricsSeries.ts';
import { reportHook, writeReport } from '../../recipes/report/writeReport.ts';
import type { TrainHook } from '../../training/trainer.ts';
import { launchChromium, tinyFrameRun, watchedPage } from './_chromium.ts';

const ROOT = join(import.meta.dirname, '..', '..');
let browser: Browser;
let dir: string;
let run: string;
const checkpointReports: number[] = [];

test.before(async () => {
  browser = await launchChromium();
  dir = await mkdtemp(join(tmpdir(), 'tempo-report-'));
  // What `pretrain --report` does: the hook rewrites the report at every checkpoint (steps 5 and 10 of 12).
  const hook = reportHook({ run: join(dir, 'run'), every: 5 });
  const spy: TrainHook = {
    onStep: async (m) => {
      await hook.onStep!(m);
      if (m.step % 5 === 0) checkpointReports.push((await stat(join(dir, 'run', 'report.html'))).mtimeMs);
    },
  };
  ({ run } = await tinyFrameRun(dir, { steps: 12, hooks: [spy] }));
});
test.after.always(async () => {
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Each plotted series as metrics.jsonl holds it, read here independently of the report code. */
function seriesOf(lines: MetricsLine[], title: string): { steps: number[]; values: number[] } {
  const pick = (line: MetricsLine): unknown => {
    if (title === 'loss (total)') return line.loss;
    if (title === 'samples/s') return line.samplesPerSecond;
    const [task, key] = title.split(' / ');
    return key === undefined ? line[title] : line.tasks[task!]?.[key];
  };
  const kept = lines.filter((l) => typeof pick(l) === 'number');
  return { steps: kept.map((l) => l.step), values: kept.map((l) => pick(l) as number) };
}

/** The largest distance, in pixels, of `ys` from the least-squares line through `(xs, ys)`, and its slope. */
function lineFit(xs: number[], ys: number[]): { residual: number; slope: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  const sxx = xs.reduce((s, x) => s + (x - mx) ** 2, 0);
  const slope = sxx === 0 ? 0 : xs.reduce((s, x, i) => s + (x - mx) * (ys[i]! - my), 0) / sxx;
  return { residual: Math.max(...xs.map((x, i) => Math.abs(my + slope * (x - mx) - ys[i]!))), slope };
}

/** Each chart's raw line has one vertex a logged step, at pixels linear in the step and in metrics.jsonl's value. */
async function checkCharts(t: ExecutionContext, page: Page, lines: MetricsLine[]): Promise<void> {
  const charts = await page.$$eval('figure.chart', (figures) =>
    figures.map((f) => ({
      title: f.getAttribute('data-title')!,
      d: f.querySelector('.raw_marks path')?.getAttribute('d') ?? '',
    })),
  );
  const titles = charts.map((c) => c.title);
  for (const expected of ['loss (total)', 'samples/s', 'lr', 'order / loss', 'order / accuracy'])
    t.true(titles.includes(expected), expected);
  for (const chart of charts) {
    const { steps, values } = seriesOf(lines, chart.title);
    const vertices = [...chart.d.matchAll(/[ML](-?[\d.]+),(-?[\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    t.is(vertices.length, steps.length, `${chart.title}: one vertex a logged step`);
    // Linear scales: pixel x is a line in the step, pixel y a line in the value (downwards); SVG rounds to 1e-3 px.
    const x = lineFit(
      steps,
      vertices.map((v) => v[0]!),
    );
    t.true(x.residual < 0.01 && x.slope > 0, `${chart.title}: x follows the steps`);
    if (Math.max(...values) > Math.min(...values)) {
      const y = lineFit(
        values,
        vertices.map((v) => v[1]!),
      );
      t.true(y.residual < 0.01 && y.slope < 0, `${chart.title}: y follows metrics.jsonl (residual ${y.residual} px)`);
    }
  }
}

test('pretrain --report: the report hook rewrote the report at each checkpoint (steps 5 and 10)', (t) => {
  t.is(checkpointReports.length, 2);
  t.true(checkpointReports[1]! >= checkpointReports[0]!);
});

test('the report opens offline with no console error and no network request, and each curve plots metrics.jsonl', async (t) => {
  await writeFile(
    join(run, 'evaluation.json'),
    // A table to render (numbers made up for the rendering check; evaluate writes this file for real runs).
    JSON.stringify({ protocols: { linear: { pretrained: 0.625, randomInit: 0.5, supervised: 0.75 } }, classes: 4 }),
  );
  const { path, content } = await writeReport({ run, umapEpochs: 50, points: 96 });
  const html = await readFile(path, 'utf8');
  t.false(/\b(src|href)=["']https?:/.test(html), 'no remote script, style or image');
  const { page, watch } = await watchedPage(browser);
  await page.goto(pathToFileURL(path).href);
  await page.waitForSelector('#map-svg circle');

  const lines = await readMetrics(join(run, 'metrics.jsonl'));
  t.is(lines.length, 12);
  await checkCharts(t, page, lines);
  t.deepEqual(await page.$$eval('#evaluation td', (cells) => cells.map((c) => c.textContent)), [
    '0.625',
    '0.500',
    '0.750',
  ]);

  // The map: one point an item; hovering shows its thumbnail; clicking fills the gallery with it and its 8 neighbours
  // (the events are sent to the point itself: another may lie on top of it).
  t.is(await page.locator('#map-svg circle').count(), content.map!.points.length);
  await page.locator('#map-svg circle').nth(3).dispatchEvent('mouseenter');
  t.true(await page.locator('#tooltip img').isVisible());
  await page.locator('#map-svg circle').nth(3).dispatchEvent('click');
  const captions = await page.$$eval('#gallery figcaption', (c) => c.map((e) => e.textContent));
  t.is(captions.length, 9);
  t.is(captions[0], `query: ${content.map!.points[3]!.caption}`);
  t.true(captions[1]!.startsWith(`1. ${content.map!.points[content.map!.points[3]!.neighbours[0]!]!.caption}`));

  const shot = join(ROOT, '.cache', 'browser', 'report.png');
  await mkdir(join(ROOT, '.cache', 'browser'), { recursive: true });
  await page.mouse.move(0, 0);
  await page.screenshot({ path: shot, fullPage: true });
  t.true(existsSync(shot));
  t.deepEqual(watch.errors, []);
  t.deepEqual(watch.network, []);
  await page.close();
});

// TEMPO_SCREENSHOT_RUN=runs/demo (a run whose report.html npm start or tempo-ssl report wrote): the same checks on
// that report, and its screenshot becomes the README's picture, docs/report.png.
const shown = process.env.TEMPO_SCREENSHOT_RUN;
if (shown) {
  test('the report of TEMPO_SCREENSHOT_RUN plots its metrics.jsonl, offline, and its screenshot is docs/report.png', async (t) => {
    const { page, watch } = await watchedPage(browser, { width: 1400, height: 900 });
    await page.goto(pathToFileURL(join(shown, 'report.html')).href);
    await checkCharts(t, page, await readMetrics(join(shown, 'metrics.jsonl')));
    await page.locator('#map-svg circle').nth(0).dispatchEvent('click');
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(ROOT, 'docs', 'report.png'), fullPage: true });
    t.deepEqual(watch.errors, []);
    t.deepEqual(watch.network, []);
    await page.close();
  });
}
