import type { TopLevelSpec } from 'vega-lite';
import type { Curve } from './metricsSeries.ts';

/**
 * A curve as an SVG string, drawn by Vega-Lite in Node (`View.toSVG()`): the raw values thin and light, the
 * smoothed ones on top. The raw line is the mark named `raw` (class `raw_marks` in the SVG), one vertex a logged
 * step, so a test can read back what was plotted. A static SVG needs no script in the page and no network.
 */
export async function curveChart(curve: Curve, size = { width: 340, height: 160 }): Promise<string> {
  // A constant curve (a constant learning rate) gets an axis from 0: fitted to its range, the axis would show the
  // smoothing's rounding noise (0.0030000000000000005) as if it were a change.
  const values = curve.points.map((p) => p.value);
  const [low, high] = [Math.min(...values), Math.max(...values)];
  const flat = high - low <= 1e-9 * Math.max(Math.abs(high), Math.abs(low));
  const spec: TopLevelSpec = {
    ...size,
    title: { text: curve.title, anchor: 'start', fontSize: 12 },
    data: { values: curve.points },
    encoding: { x: { field: 'step', type: 'quantitative', title: 'step' } },
    layer: [
      {
        name: 'raw',
        mark: { type: 'line', strokeWidth: 1, opacity: 0.35, color: '#4c78a8' },
        encoding: { y: { field: 'value', type: 'quantitative', title: null, scale: { zero: flat } } },
      },
      {
        name: 'smoothed',
        mark: { type: 'line', strokeWidth: 2, color: '#e45756' },
        encoding: { y: { field: 'smoothed', type: 'quantitative' } },
      },
    ],
    config: { view: { stroke: '#ddd' }, axis: { labelFontSize: 10, titleFontSize: 10 } },
  };
  // Loaded here, not at the top: Vega and Vega-Lite take about 0.7 s to load, which every CLI command paid.
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
