import type { EmbeddingMap } from './embeddingMap.ts';
import { MAP_SCRIPT, PALETTE } from './mapScript.ts';
import type { ScoredTurns, WordNeighbours } from './textViews.ts';

/** One chart of the report: its group (`run` or a task) and the SVG Vega drew. */
export interface ReportChart {
  group: string;
  title: string;
  svg: string;
}

/** Everything a report shows; each part but the title is optional. */
export interface ReportContent {
  /** The run folder. */
  run: string;
  /** When the report was written (ISO time). */
  written: string;
  /** `run.json` as it is. */
  settings?: unknown;
  /** Steps logged, and the last step's figures in words. */
  summary?: string;
  charts: ReportChart[];
  /** `evaluation.json` as `evaluate` writes it. */
  evaluation?: EvaluationJson;
  map?: EmbeddingMap;
  dialogues?: ScoredTurns[];
  words?: WordNeighbours[];
  /** Why a part is missing or what it shows, one line each. */
  notes: string[];
}

/** The part of `evaluate`'s JSON the report shows. */
export interface EvaluationJson {
  protocols?: Record<string, Record<string, number>>;
  classes?: number;
  trainCount?: number;
  testCount?: number;
  layer?: string;
  labelsPerClass?: number;
  [key: string]: unknown;
}

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** JSON safe inside a `<script>` element. */
const scriptJson = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');

/**
 * The report as one HTML file: styles and the map's small script inline, charts as inline SVG, images as data
 * URLs, so it opens offline from disk and makes no network request.
 */
export function reportHtml(content: ReportContent): string {
  const sections = [
    overview(content),
    `<div class="top">${curves(content.charts)}${settings(content.settings)}</div>`,
    content.evaluation ? evaluationTable(content.evaluation) : '',
    content.map ? mapSection(content.map) : '',
    content.dialogues?.length ? dialogueSection(content.dialogues) : '',
    content.words?.length ? wordSection(content.words) : '',
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tempo-ssl report: ${escapeHtml(content.run)}</title>
<style>${STYLE}</style></head>
<body>
${sections.join('\n')}
${content.map ? `<script type="application/json" id="map-data">${scriptJson(content.map)}</script><script>${MAP_SCRIPT}</script>` : ''}
</body></html>
`;
}

function overview(content: ReportContent): string {
  const notes = content.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('');
  return `<header><h1>${escapeHtml(content.run)}</h1>
<p class="muted">written ${escapeHtml(content.written)} by tempo-ssl report${content.summary ? ` &middot; ${escapeHtml(content.summary)}` : ''}</p>
${notes ? `<ul class="notes">${notes}</ul>` : ''}</header>`;
}

function settings(runJson: unknown): string {
  return `<aside id="settings"><h2>Settings (run.json)</h2>
<pre>${runJson ? escapeHtml(JSON.stringify(runJson, null, 1)) : 'no run.json'}</pre></aside>`;
}

function curves(charts: ReportChart[]): string {
  if (charts.length === 0) return '<section id="curves"><h2>Curves</h2><p>No metrics.jsonl lines yet.</p></section>';
  const groups = [...new Set(charts.map((c) => c.group))];
  const body = groups
    .map((group) => {
      const cells = charts
        .filter((c) => c.group === group)
        .map((c) => `<figure class="chart" data-title="${escapeHtml(c.title)}">${c.svg}</figure>`)
        .join('');
      return `<h3>${group === 'run' ? 'Run' : `Task ${escapeHtml(group)}`}</h3><div class="charts">${cells}</div>`;
    })
    .join('');
  return `<section id="curves"><h2>Curves</h2><p class="muted">Thin blue: each logged step; red: its moving average (weight 0.6).</p>${body}</section>`;
}

function evaluationTable(evaluation: EvaluationJson): string {
  const protocols = Object.entries(evaluation.protocols ?? {});
  const columns = [...new Set(protocols.flatMap(([, scores]) => Object.keys(scores)))];
  const cell = (v: unknown) =>
    typeof v === 'number'
      ? Number.isInteger(v)
        ? String(v)
        : v.toFixed(3)
      : v === undefined
        ? ''
        : escapeHtml(typeof v === 'string' ? v : JSON.stringify(v));
  const rows = protocols
    .map(
      ([name, scores]) =>
        `<tr><th>${escapeHtml(name)}</th>${columns.map((c) => `<td>${cell(scores[c])}</td>`).join('')}</tr>`,
    )
    .join('');
  const facts = ['classes', 'trainCount', 'testCount', 'layer', 'labelsPerClass']
    .filter((k) => evaluation[k] !== undefined)
    .map((k) => `${k} ${cell(evaluation[k])}`)
    .join(', ');
  return `<section id="evaluation"><h2>Evaluation (evaluation.json)</h2>
<table><thead><tr><th>protocol</th>${columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead><tbody>${rows}</tbody></table>
<p class="muted">${facts}</p></section>`;
}

function mapSection(map: EmbeddingMap): string {
  const legend = map.classes
    .map(
      (name, k) =>
        `<span class="key"><i style="background:${PALETTE[k % PALETTE.length]}"></i>${escapeHtml(name)}</span>`,
    )
    .join('');
  return `<section id="map"><h2>Embedding map</h2>
<p class="muted">UMAP (cosine, seeded) of ${escapeHtml(map.from)}; colour: ${escapeHtml(map.colourBy)}. Hover a point for its image; click it for its nearest neighbours in the embedding space.</p>
<div class="legend">${legend}</div>
<div class="map-row"><svg id="map-svg" width="560" height="560" viewBox="0 0 560 560"></svg>
<div id="gallery"><h3>Nearest neighbours</h3><div id="gallery-items"></div></div></div>
<div id="tooltip" hidden></div></section>`;
}

function dialogueSection(dialogues: ScoredTurns[]): string {
  const shade = (score: number | null) => (score === null ? '#eee' : `hsl(${(score * 120).toFixed(1)}, 70%, 85%)`);
  const items = dialogues
    .map((d) => {
      const turns = d.turns
        .map(
          (t) =>
            `<li class="turn" style="background:${shade(t.score)}"><span class="turn-score">${t.score === null ? '-' : t.score.toFixed(3)}</span> ${escapeHtml(t.text)}</li>`,
        )
        .join('');
      return `<div class="dialogue" data-score="${d.score ?? ''}"><h3>${escapeHtml(d.source)} #${escapeHtml(d.id)}: coherence ${d.score === null ? `none (${escapeHtml(d.reason ?? '')})` : d.score.toFixed(3)}</h3><ol>${turns}</ol></div>`;
    })
    .join('');
  return `<section id="dialogues"><h2>Dialogues</h2><p class="muted">Each turn shaded by its coherence score (the dialogue-order model's probability that the windows holding it are in order): red 0, green 1.</p>${items}</section>`;
}

function wordSection(words: WordNeighbours[]): string {
  const rows = words
    .map(
      (w) =>
        `<tr><th>${escapeHtml(w.word)}</th><td>${w.neighbours.map((n) => `${escapeHtml(n.word)} <span class="muted">${n.similarity.toFixed(2)}</span>`).join(', ')}</td></tr>`,
    )
    .join('');
  return `<section id="words"><h2>Nearest words</h2><p class="muted">Cosine neighbours in the encoder's token embedding table.</p><table>${rows}</table></section>`;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#222}
h1{font-size:20px;margin:0}h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:14px;margin:1em 0 .4em}.muted{color:#777}.notes{color:#8a5a00}
pre{background:#f6f6f6;padding:.6em;overflow:auto;max-height:40em;font-size:11px}
.top{display:flex;gap:16px;align-items:flex-start}#curves{flex:1}#settings{width:300px;flex:none}
.charts{display:flex;flex-wrap:wrap;gap:8px}.chart{margin:0}
table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:left}
.legend{display:flex;flex-wrap:wrap;gap:.8em;margin:.4em 0}.key i{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
.map-row{display:flex;gap:16px;align-items:flex-start}#map-svg{border:1px solid #ddd;background:#fff}
#map-svg circle{cursor:pointer;stroke:#fff;stroke-width:.5}#map-svg circle.picked{stroke:#000;stroke-width:2}
#gallery{flex:1}#gallery-items{display:grid;grid-template-columns:repeat(3,1fr);gap:8px}
#gallery figure{margin:0;font-size:11px}#gallery img,#tooltip img{width:96px;height:96px;image-rendering:pixelated;border:1px solid #ccc}
#gallery figure.query img{border:2px solid #000}
#tooltip{position:fixed;pointer-events:none;background:#fff;border:1px solid #999;padding:4px;font-size:11px}
.dialogue ol{padding-left:1.5em}.turn{padding:.2em .4em;margin:2px 0;border-radius:3px}.turn-score{font-family:monospace;color:#333;margin-right:.5em}
`;
